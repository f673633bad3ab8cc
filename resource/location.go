package resource

import (
	"fmt"
	"path/filepath"
	"runtime"
)

// Location is a place in the source: where a resource or section was declared.
type Location struct {
	File string
	Line int
}

// String prints the base name and line, "accounts.go:41"; the name alone
// for a source without lines ("accounts.toml", "variable KILN_…").
func (l Location) String() string {
	switch {
	case l.File == "":
		return ""
	case l.Line == 0:
		return filepath.Base(l.File)
	}
	return fmt.Sprintf("%s:%d", filepath.Base(l.File), l.Line)
}

// Caller returns the location skip frames above its caller, as
// runtime.Caller does; extensions use it to record where they were declared.
func Caller(skip int) Location {
	_, file, line, ok := runtime.Caller(skip + 1)
	if !ok {
		return Location{}
	}
	return Location{File: file, Line: line}
}
