#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (Playwright's own browser
# download is not used) and trust the local CA through an NSS database made with certutil.
source "$(dirname "$0")/lib.sh"
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v certutil >/dev/null || missing+=(libnss3-tools)
[ ${#missing[@]} -eq 0 ] && exit 0
is_root && is_debian_like || die "the browser tests need ${missing[*]} (Debian/Ubuntu packages); install them and retry."
step "Installing ${missing[*]} from the OS packages (browser tests)"
DEBIAN_FRONTEND=noninteractive apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || die "could not install ${missing[*]}"
