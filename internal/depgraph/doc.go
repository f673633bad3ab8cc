// Package depgraph holds the test that pins kiln's layering: which of the
// project's packages may import which, and which outside modules the core
// packages must never reach. It has no code of its own; see
// depgraph_test.go, where the allowed edges are listed.
package depgraph
