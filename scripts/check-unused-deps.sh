#!/bin/bash
# Fails when a workspace crate lists a [dependencies] entry that none of its library or
# binary targets uses (rustc's unused_crate_dependencies, asked of the lib and bin
# targets only: as a workspace lint it also fires on every test target, which gets all
# dev-dependencies and the package's normal ones). A dependency used only in tests
# belongs in [dev-dependencies]. Needs cargo (clippy) and jq, nothing from the network.
set -euo pipefail
cd "$(dirname "$0")/.."

# "package:crate" pairs allowed for now, each with its reason (none today), e.g.
#     # used only once feature X lands (issue N)
#     "boxctl:some_crate"
ALLOWED=(
)

messages=$(mktemp /tmp/boxrun-unused-deps.XXXXXX)
trap 'rm -f "$messages"' EXIT
cargo clippy --workspace --lib --bins --message-format=json -q \
    -- -W unused_crate_dependencies >"$messages"
meta=$(cargo metadata --no-deps --format-version 1)

# A dependency is unused when every lib and bin target of its package reports it.
unused=$(jq -rs --argjson meta "$meta" '
  ($meta.packages
    | map({key: .id, value: {name: .name,
        n: ([.targets[] | select(any(.kind[]; . == "lib" or . == "rlib" or . == "bin"))] | length)}})
    | from_entries) as $pk
  | [ .[]
      | select(.reason == "compiler-message"
               and .message.code.code == "unused_crate_dependencies")
      | { pkg: .package_id,
          target: ((.target.kind | join(",")) + ":" + .target.name),
          dep: (.message.message | capture("extern crate `(?<d>[^`]+)`").d) } ]
  | unique
  | group_by([.pkg, .dep])[]
  | select(length == $pk[.[0].pkg].n)
  | "\($pk[.[0].pkg].name):\(.[0].dep)"' "$messages")

status=0
for u in $unused; do
    skip=0
    for a in "${ALLOWED[@]}"; do
        [ "$u" = "$a" ] && skip=1
    done
    if [ "$skip" = 0 ]; then
        echo "unused dependency ${u/:/: }: remove it from that crate's [dependencies], or move it to [dev-dependencies] if only tests use it" >&2
        status=1
    fi
done
[ "$status" = 0 ] && echo "check-unused-deps: every dependency is used"
exit "$status"
