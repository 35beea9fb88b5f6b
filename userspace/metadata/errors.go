package metadata

import (
	"errors"
	"fmt"
)

// ErrNotFound is matched (errors.Is) by the error of a Lookup whose name
// does not resolve to a relation: a typo, a dropped table, or a client's
// temporary table, which the proxy's own connections cannot see.
var ErrNotFound = errors.New("relation not found")

// NotFoundError is the error of a Lookup whose name does not resolve.
type NotFoundError struct {
	// Schema is "" for an unqualified name (resolved through search_path).
	Schema, Name string
}

// Error names the relation as it was asked for.
func (e *NotFoundError) Error() string {
	if e.Schema == "" {
		return fmt.Sprintf("metadata: relation %q not found on the search_path", e.Name)
	}
	return fmt.Sprintf("metadata: relation %q.%q not found", e.Schema, e.Name)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }
