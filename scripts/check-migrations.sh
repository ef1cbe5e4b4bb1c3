#!/usr/bin/env bash
# Refuses a change to a migration that has already landed: once a migration is in the history of main,
# databases everywhere may have applied it, and an edit would never reach them. Schema changes go into a
# new migration. Checks every migration the history ever added: still there, and unchanged since the
# commit that added it (in later commits and in the working tree).
set -euo pipefail
cd "$(dirname "$0")/.."

# Edits allowed after the fact. The first came before the migration was ever released; the second added
# rescue_sweeps, which 1764500000000-close-invariant-holes creates where it is missing; the third changed
# only a comment (a measured figure in place of an estimate), before the migration was released.
known_edits=(
  "f35440c240dec58c7872c6e287dcb04305b225dd migrations/1764300000000-create-jobs.ts"
  "9319d740b7954bf8636c3ca5f4d9ef7d9e05e878 migrations/1764400000000-tune-jobs-for-churn.ts"
  "a7cf3257144f74dd6f4b57f8d75c348a99aaf939 migrations/1765700000000-list-failed-and-cancelled-jobs.ts"
)

if ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "check-migrations: not a git checkout; nothing to compare against" >&2
  exit 1
fi

status=0
mapfile -t landed < <(git log --diff-filter=A --name-only --format= -- migrations/ | sort -u)
for file in "${landed[@]}"; do
  [ -n "$file" ] || continue
  if [ ! -f "$file" ]; then
    echo "check-migrations: $file landed and was removed or renamed; add a new migration instead" >&2
    status=1
    continue
  fi
  added=$(git log --diff-filter=A --format=%H -- "$file" | tail -n 1)
  while read -r commit; do
    [ -n "$commit" ] || continue
    allowed=false
    for edit in "${known_edits[@]}"; do
      [ "$edit" = "$commit $file" ] && allowed=true
    done
    if [ "$allowed" = false ]; then
      echo "check-migrations: $file was changed by commit $commit after it landed in $added" >&2
      status=1
    fi
  done < <(git log --format=%H "$added..HEAD" -- "$file")
  if ! git diff --quiet HEAD -- "$file"; then
    echo "check-migrations: $file has uncommitted changes, but it has landed: add a new migration instead" >&2
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "check-migrations: ${#landed[@]} landed migrations unchanged"
exit "$status"
