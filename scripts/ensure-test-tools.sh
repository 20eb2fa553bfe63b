#!/usr/bin/env bash
# Make sure the command-line tools Postwire's tests call are installed:
#   Perl's Mail::DKIM (Debian libmail-dkim-perl, with Net::DNS): the independent
#   DKIM verifier of tests/integration/test_dkim_verify.py (tests/support/dkim_verify.pl).
#   swaks (Debian swaks): the second SMTP client of tests/e2e/test_inbound.py.
# Idempotent: a tool that is already there is left alone; otherwise it is installed
# from Debian packages, non-interactively. Runs as root when something is missing.
# Prints one line per tool saying what it did.
set -euo pipefail

die() { echo "ensure-test-tools: $*" >&2; exit 1; }

APT_UPDATED=0
apt_install() {
  [ "$(id -u)" -eq 0 ] || die "must run as root to install $*"
  command -v apt-get >/dev/null || die "apt-get not found; install $* by hand"
  if [ "$APT_UPDATED" -eq 0 ]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" </dev/null >/dev/null
}

mail_dkim_version() { perl -MMail::DKIM -MMail::DKIM::Verifier -MNet::DNS::Resolver -e 'print $Mail::DKIM::VERSION' 2>/dev/null; }

ensure_mail_dkim() {
  local version
  if version=$(mail_dkim_version); then
    echo "mail-dkim: already installed ($version), left alone"
    return
  fi
  apt_install libmail-dkim-perl
  version=$(mail_dkim_version) || die "libmail-dkim-perl installed but perl cannot load Mail::DKIM::Verifier"
  echo "mail-dkim: installed libmail-dkim-perl ($version)"
}

ensure_swaks() {
  if command -v swaks >/dev/null; then
    echo "swaks: already installed ($(swaks --version 2>/dev/null | head -n 1)), left alone"
    return
  fi
  apt_install swaks
  command -v swaks >/dev/null || die "swaks installed but not on PATH"
  echo "swaks: installed swaks ($(swaks --version 2>/dev/null | head -n 1))"
}

ensure_mail_dkim
ensure_swaks
