package resource_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kiln-go/kiln/resource"
)

func TestValidationErrorsWalksJoinedAndWrapped(t *testing.T) {
	a := &resource.ValidationError{Resource: "user", Action: "register", Field: "email", Message: "is required"}
	b := &resource.ValidationError{Resource: "user", Action: "register", Field: "password", Message: "is too short"}
	err := fmt.Errorf("outer: %w", errors.Join(a, errors.New("other"), fmt.Errorf("inner: %w", b)))
	got := resource.ValidationErrors(err)
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("ValidationErrors = %v, want [a b]", got)
	}
	if got := resource.ValidationErrors(errors.New("plain")); len(got) != 0 {
		t.Fatalf("ValidationErrors(plain) = %v, want none", got)
	}
	if got := resource.BuildErrors(errors.Join(&resource.BuildError{Message: "x"}, &resource.BuildError{Message: "y"})); len(got) != 2 {
		t.Fatalf("BuildErrors found %d, want 2", len(got))
	}
}
