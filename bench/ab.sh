#!/bin/bash
# ab.sh OLD NEW [ROUNDS]: the library of two commits on the scale
# workload, interleaved (OLD, NEW, OLD, NEW, ...), one run each per round,
# so that both see the same machine. Both are measured by NEW's bench (its
# bench/*.go built against each commit's library, which the bench uses
# through its public API), with -strategies llmslots when NEW's bench has
# it.
#   bash bench/ab.sh 3f60b16 847b7e9 3
set -euo pipefail
old=${1:?old commit} new=${2:?new commit} rounds=${3:-2}
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
tmp=$(mktemp -d)
cleanup() {
	for c in "$old" "$new"; do git -C "$repo" worktree remove --force "$tmp/$c" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
for c in "$old" "$new"; do
	git -C "$repo" worktree add --quiet --detach "$tmp/$c" "$c"
done
cp "$tmp/$new"/bench/*.go "$tmp/$old/bench/"
for c in "$old" "$new"; do
	(cd "$tmp/$c" && go build -o "$tmp/bench-$c" ./bench)
done
only=()
if grep -q '"strategies"' "$tmp/$new/bench/main.go"; then
	only=(-strategies llmslots)
fi
for round in $(seq "$rounds"); do
	for c in "$old" "$new"; do
		echo "== $c, round $round"
		"$tmp/bench-$c" -only scale -runs 1 "${only[@]}" | grep -E '^\| [0-9]'
	done
done
