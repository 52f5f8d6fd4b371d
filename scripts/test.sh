#!/usr/bin/env bash
# Runs every check CI runs: formatting, vet, go.mod tidiness, the
# race-enabled test suite, the memory bounds without the race detector and a
# short run of each fuzz target. On a fresh machine (as root) it first installs
# the Debian packages the tests need; Go modules come through `go test`.
#
# The shared fixtures (../shared/fixtures next to the checkout) are required:
# without them the run fails at once, and every test that reads a fixture
# fails instead of skipping (ESPDECK_REQUIRE_FIXTURES=1), so a run that lost
# its fixtures cannot pass by skipping.
#
#   ./scripts/test.sh              everything
#   FUZZTIME=30s ./scripts/test.sh longer fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-4s}

fixtures=../shared/fixtures
for need in elf/esp32-app-template.elf images partitions expected secure; do
  if [[ ! -e "$fixtures/$need" ]]; then
    echo "the shared fixtures are missing: $(cd .. && pwd)/shared/fixtures/$need does not exist."
    echo "Check out the shared folder next to this checkout (tests read ../shared/fixtures); CI must not run without it."
    exit 1
  fi
done
export ESPDECK_REQUIRE_FIXTURES=1

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

echo "== import groups (standard library, third party, ours)"
go run ./scripts/importgroups

echo "== go vet"
go vet ./...

echo "== go mod tidy"
if ! go mod tidy -diff; then
  echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit the result"; exit 1
fi

echo "== go test -race"
go test -race -count=1 ./...

# The race detector multiplies memory, so the idle-TUI memory tests enforce
# their bounds only without it: run them once more, plainly.
echo "== memory bounds (without -race)"
memtests='^TestIdle(Memory|ProgramRSS)With200Devices$'
if ! out=$(go test -count=1 -run "$memtests" -v ./tui/ 2>&1); then
  echo "$out"; exit 1
fi
echo "$out" | grep -E 'VmRSS|heap in use' || true
# A renamed or skipped test must not pass this step silently.
for t in TestIdleMemoryWith200Devices TestIdleProgramRSSWith200Devices; do
  if ! grep -q -- "--- PASS: $t " <<<"$out"; then
    echo "$out"; echo "memory test $t did not run and pass without -race"; exit 1
  fi
done

echo "== fuzz targets ($fuzztime each)"
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "-- $pkg $target"
    for try in 1 2; do
      # Minimising every new input for up to a minute (the default) can eat
      # a short run whole; a few hundred tries keep the time for exploring.
      if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 200x "$pkg" >/tmp/espdeck-fuzz.log 2>&1; then
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
