#!/bin/bash
# ab.sh OLD NEW [ROUNDS]: the scale workload of two commits, interleaved
# (OLD, NEW, OLD, NEW, ...), one run each per round, so that both see the
# same machine. Run as root, it raises the user's inotify instance limit
# for the whole comparison (each waiting process needs one) and puts it
# back; otherwise the 256-process row of a commit whose bench does not
# raise it measures processes waiting on locks too.
#   bash bench/ab.sh 49941ec 7192853
set -euo pipefail
old=${1:?old commit} new=${2:?new commit} rounds=${3:-2}
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
tmp=$(mktemp -d)
limit=/proc/sys/fs/inotify/max_user_instances
orig=$(cat "$limit")
cleanup() {
	echo "$orig" >"$limit" 2>/dev/null || true
	for c in "$old" "$new"; do git -C "$repo" worktree remove --force "$tmp/$c" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
for c in "$old" "$new"; do
	git -C "$repo" worktree add --detach "$tmp/$c" "$c" >/dev/null
	(cd "$tmp/$c" && go build -o "$tmp/bench-$c" ./bench)
done
echo 400 >"$limit" 2>/dev/null || echo "(cannot raise $limit: the 256-process rows mix in waiters on locks)"
for round in $(seq "$rounds"); do
	for c in "$old" "$new"; do
		echo "== $c, round $round"
		"$tmp/bench-$c" -only scale -runs 1 | grep -E '^\| [0-9]'
	done
done
