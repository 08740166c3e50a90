#!/usr/bin/env bash
# Usage: guides.sh --check | --write
#
# The guides in docs/guides/ take their configurations from examples/: a line
#
#   <!-- example: examples/fleet/main.tf -->
#
# is followed by a fenced block holding that file, unchanged. --write (re)generates each such
# block from the file; --check fails, showing the difference, when a block is out of date
# or names a file that does not exist (make examples-check runs it). --check also checks that
# every guide starts with the Terraform Registry's front matter (page_title, subcategory,
# description), and that each `quoted` summary or message in the first column of troubleshooting.md's tables is a
# string the provider's source (src/) really has.
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
mode="${1:-}"
[[ "$mode" == --check || "$mode" == --write ]] || { echo "usage: guides.sh --check | --write" >&2; exit 2; }

# The guide with every example block regenerated from its file.
render() {
  local guide="$1" line path fence
  local in_old_block=0 expect_block=0
  while IFS= read -r line || [[ -n "$line" ]]; do
    if ((expect_block)); then
      expect_block=0
      if [[ "$line" =~ ^\`\`\` ]]; then in_old_block=1; continue; fi
    fi
    if ((in_old_block)); then
      [[ "$line" == '```' ]] && in_old_block=0
      continue
    fi
    printf '%s\n' "$line"
    if [[ "$line" =~ ^\<!--\ example:\ ([^ ]+)\ --\>$ ]]; then
      path="${BASH_REMATCH[1]}"
      [[ -f "$repo/$path" ]] || { echo "guides.sh: $guide names $path, which does not exist" >&2; return 1; }
      case "$path" in *.sh) fence='```shell' ;; *.yaml) fence='```yaml' ;; *) fence='```hcl' ;; esac
      printf '%s\n' "$fence"
      cat "$repo/$path"
      printf '```\n'
      expect_block=1
    fi
  done <"$guide"
}

# The `...` items of the first table column of troubleshooting.md that src/ has no string for.
unknown_messages() {
  local item
  sed -n 's/^| \(`[^|]*\) |.*/\1/p' "$repo/docs/guides/troubleshooting.md" | grep -o '`[^`]*`' | tr -d '`' |
    while IFS= read -r item; do
      grep -rqF -- "\"$item\"" "$repo/src" || echo "$item"
    done
}

# The keys of the guide's YAML front matter (between the first two `---` lines), in order.
front_matter_keys() {
  awk 'NR == 1 { if ($0 != "---") exit; next } $0 == "---" { exit } /^[a-z_]+:/ { sub(/:.*/, ""); print }' "$1" | paste -sd' ' -
}

shopt -s nullglob
status=0
if [[ "$mode" == --check ]]; then
  for guide in "$repo"/docs/guides/*.md; do
    keys="$(front_matter_keys "$guide")"
    if [[ "$keys" != "page_title subcategory description" ]]; then
      echo "guides.sh: ${guide#"$repo"/} must start with front matter page_title, subcategory, description (has: ${keys:-none})" >&2
      status=1
    fi
  done
fi
if [[ "$mode" == --check && -f "$repo/docs/guides/troubleshooting.md" ]]; then
  unknown="$(unknown_messages)"
  if [[ -n "$unknown" ]]; then
    echo "guides.sh: docs/guides/troubleshooting.md quotes messages the provider does not have (src/):" >&2
    sed 's/^/  /' <<<"$unknown" >&2
    status=1
  fi
fi
for guide in "$repo"/docs/guides/*.md; do
  rendered="$(render "$guide")" || { status=1; continue; }
  if [[ "$mode" == --write ]]; then
    printf '%s\n' "$rendered" >"$guide"
  elif ! diff -u "$guide" <(printf '%s\n' "$rendered") >&2; then
    echo "guides.sh: ${guide#"$repo"/} differs from the example files it names" >&2
    status=1
  fi
done
exit "$status"
