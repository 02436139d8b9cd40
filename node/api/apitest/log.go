package apitest

import (
	"log/slog"
	"testing"
)

// testLogger sends the server's log, debug included, to t.Log so that it
// shows with a failing test only.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
