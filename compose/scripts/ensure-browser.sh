#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (Playwright's own browser
# download is not used) and trust the local CA through an NSS database made with certutil.
source "$(dirname "$0")/lib.sh"
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v certutil >/dev/null || missing+=(libnss3-tools)
[ ${#missing[@]} -eq 0 ] && exit 0
apt_install "the browser tests" "${missing[@]}"
