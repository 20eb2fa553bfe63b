#!/usr/bin/env bash
# Check the protobuf contracts with buf (from .venv/bin):
#   1. buf lint   2. buf format (no diff)
#   3. buf breaking against the previous commit, HEAD~1 (skipped when there is none,
#      when it has no protos/, or when HEAD's message has a "Buf-Breaking: allow" line)
#   4. buf generate, then gen/ must have no changes against git.
# Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"  # buf, and the python its plugins run

step() { echo "== $*"; }
fail() { echo "check-contracts: $*" >&2; exit 1; }

step "buf lint"
buf lint || fail "buf lint failed"

step "buf format"
buf format --diff --exit-code || fail "protos are not formatted; run: buf format -w"

step "buf breaking against HEAD~1"
if ! git rev-parse -q --verify 'HEAD~1^{commit}' >/dev/null; then
  echo "skipped: HEAD has no parent commit"
elif ! git cat-file -e 'HEAD~1:protos' 2>/dev/null; then
  echo "skipped: HEAD~1 has no protos/"
elif git log -1 --format=%B HEAD | grep -qi '^Buf-Breaking: *allow'; then
  echo "skipped: HEAD's message says Buf-Breaking: allow"
else
  # The workspace has two modules, so compare module protos against an image of
  # HEAD~1's protos module (built in HEAD~1's own workspace, for its imports).
  old=$(mktemp -d)
  trap 'rm -rf "$old"' EXIT
  git archive HEAD~1 | tar -x -C "$old"
  (cd "$old" && buf build protos -o old.binpb) || fail "cannot build HEAD~1's protos"
  buf breaking protos --against "$old/old.binpb" \
    || fail "breaking change against HEAD~1 (if intended, add 'Buf-Breaking: allow' to the commit message)"
fi

step "buf generate"
buf generate --clean || fail "buf generate failed"
if [ -n "$(git status --porcelain -- gen)" ]; then
  git status --porcelain -- gen >&2
  fail "gen/ differs from buf generate; run make generate and commit"
fi
echo "contracts OK"
