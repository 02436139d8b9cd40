package client

import (
	"errors"
	"fmt"
	"syscall"
)

// APIError is a failure the API answered. Error() is the API's own sentence,
// meant to be shown to the user as it is.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Message }

// NotRunningError means no daemon answers for a repo (or address): the repo
// has no api file, or nothing listens where it points.
type NotRunningError struct {
	Repo string // empty when the client was made from an address
	Addr string
	Err  error // the underlying cause, if any
}

func (e *NotRunningError) Error() string {
	if e.Repo != "" {
		return fmt.Sprintf("the Agora daemon is not running for repo %s; start it with `agora daemon` (or `agora up`)", e.Repo)
	}
	return fmt.Sprintf("the Agora daemon is not running at %s; start it with `agora daemon` (or `agora up`)", e.Addr)
}

func (e *NotRunningError) Unwrap() error { return e.Err }

// IsNotRunning reports whether err means that the daemon is not running.
func IsNotRunning(err error) bool {
	_, ok := errors.AsType[*NotRunningError](err)
	return ok
}

// refused reports a dial that nothing answered: the daemon is down, or died
// without removing its api file.
func refused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}
