module github.com/llmslots/llmslots

go 1.24.0

require (
	github.com/gofrs/flock v0.13.0
	golang.org/x/sys v0.40.0
)
