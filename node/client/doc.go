// Package client is the Go client of the node's local HTTP API, used by the
// agora CLI and by tests.
//
// It owns finding a running node from its repo (the api and api.token files),
// the request plumbing, turning the API's error sentences into errors that
// print as they are, and reading the event stream with resume. It must not
// contain node logic or reach the node by any way other than the API.
package client
