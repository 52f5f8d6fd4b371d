#!/usr/bin/env bash
# Runs every check CI runs: formatting, vet, the race-enabled test suite and a
# short run of each fuzz target. On a fresh machine (as root) it first installs
# the Debian packages the tests need; Go modules come through `go test`.
#
#   ./scripts/test.sh              everything
#   FUZZTIME=30s ./scripts/test.sh longer fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-4s}

# Debian packages some integration tests use (an independent mDNS responder,
# network namespace tools). Tests that need them skip, saying why, without them.
pkgs=()
while read -r p; do
  [[ -z "$p" || "$p" == \#* ]] && continue
  dpkg -s "$p" >/dev/null 2>&1 || pkgs+=("$p")
done < scripts/debian-packages.txt
if ((${#pkgs[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "== installing Debian packages: ${pkgs[*]}"
    apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null \
      || echo "warning: could not install ${pkgs[*]}; the tests that need them will skip"
  else
    echo "note: not root; tests that need ${pkgs[*]} will skip"
  fi
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n "$unformatted" ]]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 ./...

echo "== fuzz targets ($fuzztime each)"
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "-- $pkg $target"
    for try in 1 2; do
      if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/espdeck-fuzz.log 2>&1; then
        break
      fi
      # A real finding always writes its input under testdata/fuzz. The fuzz
      # engine itself sometimes gives up on a busy worker at the deadline
      # ("context deadline exceeded", no input written) on a loaded machine:
      # only that is tried once more.
      if [[ $try == 1 ]] && ! grep -q 'Failing input written' /tmp/espdeck-fuzz.log \
         && grep -q 'context deadline exceeded' /tmp/espdeck-fuzz.log; then
        echo "   (the fuzz engine timed out a worker without a finding; running $target once more)"
        continue
      fi
      cat /tmp/espdeck-fuzz.log
      echo "fuzz target $target in $pkg failed; the failing input is under testdata/fuzz"
      exit 1
    done
  done
done
echo "all checks passed"
