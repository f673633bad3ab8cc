package tokenresource

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

// metrics are the collectors of one built token resource: Build makes
// them (Transform), every Store of the built domain shares them. They
// always count; registering the Store (a prometheus.Collector) exports
// them. Revocations and expunged rows are counted by notifiers on the
// section's own actions, after commit; the rest by the Store's methods.
type metrics struct {
	revoked     *prometheus.CounterVec
	expunged    prometheus.Counter
	expungeRuns prometheus.Counter
	lastExpunge prometheus.Gauge
	lookups     *prometheus.CounterVec
	errors      *prometheus.CounterVec

	knowledgeHits   *prometheus.CounterVec
	hitsGood        prometheus.Counter // knowledgeHits's, resolved once: hits are the hot path
	hitsRevoked     prometheus.Counter
	knowledgeMisses prometheus.Counter
	// knowledgeFenceFailures counts good answers not given for a fence
	// that failed (see Store.known).
	knowledgeFenceFailures prometheus.Counter
	knowledgeResets        *prometheus.CounterVec
	knowledgeTrusted       prometheus.Gauge
	knowledgeSizes         []prometheus.Collector // by newKnowledge
}

// The operations of kiln_tokens_lookups_total and kiln_tokens_errors_total.
const (
	opGet       = "get"
	opIsRevoked = "is_revoked"
	opCheck     = "check"
	opStore     = "store_token"
	opRevoke    = "revoke"
	opExpunge   = "expunge"
)

// revocationReasons label kiln_tokens_revoked_total; any other reason is
// counted as "other", so that the label's values stay few.
var revocationReasons = []revocation.Reason{revocation.SignedOut, revocation.LogOutEverywhere, revocation.PasswordChanged, revocation.Revoked}

func newMetrics() *metrics {
	m := &metrics{
		revoked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_tokens_revoked_total",
			Help: "Tokens revoked by this process, counted after commit, one per token (bulk revocations included), by reason.",
		}, []string{"reason"}),
		expunged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kiln_tokens_expunged_total",
			Help: "Expired token rows (revocations included) this process removed, counted after commit.",
		}),
		expungeRuns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kiln_tokens_expunge_runs_total",
			Help: "Runs of Store.ExpungeExpired in this process (the expunger's included), failed ones included.",
		}),
		lastExpunge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kiln_tokens_expunge_last_success_timestamp_seconds",
			Help: "Unix time of this process's last successful Store.ExpungeExpired run; 0 before the first.",
		}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_tokens_lookups_total",
			Help: `Token store reads by this process, by lookup: "get" (a token's row: presence checks, cookie sessions), "is_revoked" (a revocation check), "check" (the live safety net's batch check).`,
		}, []string{"lookup"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_tokens_errors_total",
			Help: "Token store calls by this process that failed for want of a working store, by operation (not found, already revoked, bad input and cancelled calls are not counted).",
		}, []string{"operation"}),
		knowledgeHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_tokens_knowledge_hits_total",
			Help: `Session token checks this process answered from its knowledge, without reading the database, by what it knew: "good" or "revoked".`,
		}, []string{"known"}),
		knowledgeMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kiln_tokens_knowledge_misses_total",
			Help: "Session token checks this process answered by reading the database while its knowledge was in use.",
		}),
		knowledgeFenceFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kiln_tokens_knowledge_fence_failures_total",
			Help: "Session token checks this process answered by reading the database although it knew the token as good, because the fence through its pub/sub failed (subscription down or stalled): it could not tell that no revocation was on its way.",
		}),
		knowledgeResets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_tokens_knowledge_resets_total",
			Help: `Times this process stopped trusting every token it knew as good, by cause: "lost" (a subscription lost), "subscribed" (one made or made again), "unnamed" (a revocation heard without a jti), "evicted" (remembered revocations evicted).`,
		}, []string{"cause"}),
		knowledgeTrusted: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kiln_tokens_knowledge_trusted",
			Help: "1 while this process trusts the tokens it knows as good: its knowledge follows prompt feeds only, and every one is up.",
		}),
	}
	// Every series exists from the start, at 0, so that rates and ratios
	// over them have a value before the first event.
	for _, r := range revocationReasons {
		m.revoked.WithLabelValues(string(r))
	}
	for _, op := range []string{opGet, opIsRevoked, opCheck} {
		m.lookups.WithLabelValues(op)
	}
	for _, op := range []string{opGet, opIsRevoked, opCheck, opStore, opRevoke, opExpunge} {
		m.errors.WithLabelValues(op)
	}
	m.hitsGood = m.knowledgeHits.WithLabelValues(knownGoodLabel)
	m.hitsRevoked = m.knowledgeHits.WithLabelValues(knownRevokedLabel)
	for _, cause := range []string{resetLost, resetSubscribed, resetUnnamed, resetEvicted} {
		m.knowledgeResets.WithLabelValues(cause)
	}
	return m
}

// The values of kiln_tokens_knowledge_hits_total's label and of
// kiln_tokens_knowledge_entries's.
const (
	knownGoodLabel    = "good"
	knownRevokedLabel = "revoked"
)

// knowledgeEntries makes the kiln_tokens_knowledge_entries gauges, one per
// kind, from count.
func (m *metrics) knowledgeEntries(count func(kind string) float64) {
	for _, kind := range []string{knownGoodLabel, knownRevokedLabel} {
		m.knowledgeSizes = append(m.knowledgeSizes, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "kiln_tokens_knowledge_entries",
			Help:        "Tokens this process knows, by kind: good (read as good, trusted or not) or revoked.",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 { return count(kind) }))
	}
}

// hit counts a check answered from the knowledge.
func (m *metrics) hit(a answer) {
	if a == knownRevoked {
		m.hitsRevoked.Inc()
		return
	}
	m.hitsGood.Inc()
}

func (m *metrics) collectors() []prometheus.Collector {
	return append([]prometheus.Collector{m.revoked, m.expunged, m.expungeRuns, m.lastExpunge, m.lookups, m.errors,
		m.knowledgeHits, m.knowledgeMisses, m.knowledgeFenceFailures, m.knowledgeResets, m.knowledgeTrusted}, m.knowledgeSizes...)
}

// countRevoked is the notifier, on the actions that revoke, that counts
// each revoked token once its revocation is committed.
func (m *metrics) countRevoked(_ context.Context, n resource.Notification) error {
	reason, _, ok := RevocationOf(n)
	if !ok {
		return nil
	}
	label := "other"
	for _, r := range revocationReasons {
		if reason == r {
			label = string(r)
		}
	}
	m.revoked.WithLabelValues(label).Inc()
	return nil
}

// countExpunged is the notifier, on the expunge action, that counts each
// row removed once the removal is committed.
func (m *metrics) countExpunged(_ context.Context, n resource.Notification) error {
	if _, _, ok := RevocationOf(n); ok {
		m.expunged.Inc()
	}
	return nil
}

// lookup counts a read of the store, and its failure.
func (m *metrics) lookup(op string, err error) {
	m.lookups.WithLabelValues(op).Inc()
	m.failed(op, err)
}

// failed counts err, from operation op, when the store failed: not when
// it is an answer (not found, already revoked), bad input, or a caller
// that left.
func (m *metrics) failed(op string, err error) {
	if err == nil || errors.Is(err, resource.ErrNotFound) || errors.Is(err, ErrAlreadyRevoked) ||
		errors.Is(err, resource.ErrInvalid) || errors.Is(err, context.Canceled) {
		return
	}
	m.errors.WithLabelValues(op).Inc()
}

// Describe implements prometheus.Collector: a Store is one, so that an
// app registers it to export the token store's metrics. Every Store of
// one built domain reports the same metrics, so that only one of them is
// registered on a registry; a second is refused with
// prometheus.AlreadyRegisteredError. The metrics, all for this process:
//
//   - kiln_tokens_revoked_total{reason} (counter): tokens revoked, one
//     per token (a revoke-all counts each token it revoked), counted after
//     the revocation commits, by reason (signed_out, log_out_everywhere,
//     password_changed, revoked; any other reason is "other").
//   - kiln_tokens_expunged_total (counter): expired rows removed,
//     revocations included, counted after commit.
//   - kiln_tokens_expunge_runs_total (counter): ExpungeExpired runs,
//     Start's included, failed ones too.
//   - kiln_tokens_expunge_last_success_timestamp_seconds (gauge): when
//     ExpungeExpired last succeeded, in Unix seconds; 0 before.
//   - kiln_tokens_lookups_total{lookup} (counter): reads: "get" (Get: a
//     token's row, the presence check of a request), "is_revoked"
//     (IsRevoked: the revocation check of a request), "check" (Check:
//     the live safety net, one count per call).
//   - kiln_tokens_errors_total{operation} (counter): calls that failed
//     for want of a working store (its database down, a deadline passed),
//     by operation: get, is_revoked, check, store_token (StoreToken),
//     revoke (Revoke, RevokeJTI, RevokeAllForSubject), expunge
//     (ExpungeExpired). Not found and ErrAlreadyRevoked are answers, bad
//     input and a cancelled ctx the caller's doing: none is counted. A
//     failed is_revoked refuses the token (the check fails closed).
//   - kiln_tokens_knowledge_hits_total{known} (counter): session token
//     checks (IsRevoked, Session) answered from this node's knowledge,
//     with no read: known "good" or "revoked" (see Follow).
//   - kiln_tokens_knowledge_misses_total (counter): those checks that
//     read the database while the knowledge was in use (each read is
//     counted in kiln_tokens_lookups_total too).
//   - kiln_tokens_knowledge_resets_total{cause} (counter): times every
//     token known as good stopped being trusted: "lost" (a feed's
//     subscription lost), "subscribed" (made or made again), "unnamed" (a
//     revocation heard without a jti, from a node of an earlier version),
//     "evicted" (remembered revocations evicted for room).
//   - kiln_tokens_knowledge_trusted (gauge): 1 while tokens known as good
//     are trusted: the knowledge follows prompt feeds only, every one up.
//   - kiln_tokens_knowledge_entries{kind} (gauge): tokens known, by kind:
//     "good" (trusted or not, until evicted) and "revoked".
//
// Revocations and expunged rows are counted by the section's own actions
// (revoke_stored, store_revocation, expunge_expired; an action of one of
// those names declared by the user is not), whichever way they run: the
// Store, an add-on, an action run by name. The other metrics count the
// Store's methods.
func (s *Store) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range s.metrics.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (s *Store) Collect(ch chan<- prometheus.Metric) {
	for _, c := range s.metrics.collectors() {
		c.Collect(ch)
	}
}

var _ prometheus.Collector = (*Store)(nil)
