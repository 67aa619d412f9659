module raft-tests/porcupine

go 1.19

require github.com/anishathalye/porcupine v1.3.0

// Vendored copy of the v1.3.0 release (commit 55508eb201b314c218d7e8412c3ea4b9499a5f53), unmodified:
// the Go module proxy cannot be reached from this project's machines. To take it from the proxy
// instead, delete this line and run `go mod tidy` (which writes go.sum).
replace github.com/anishathalye/porcupine => ./third_party/porcupine
