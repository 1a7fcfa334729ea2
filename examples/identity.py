#!/usr/bin/env python3
"""How a site's backend signs the identity a page's `web` key must carry.

The page asks Touchpoint for offers with the public `web` key and the header
`X-Touchpoint-Identity: CUSTOMER_ID.EXPIRY_UNIX.HEX_HMAC_SHA256(secret, "CUSTOMER_ID.EXPIRY_UNIX")`,
which only the site's backend can make: it knows who is logged in and holds
`web.identity_secret`. Render the value into the page (or hand it out from a logged-in
endpoint) and keep the expiry short.

Usage: identity.py SECRET CUSTOMER_ID SECONDS_VALID
"""

import hashlib
import hmac
import sys
import time


def touchpoint_identity(secret: str, customer_id: str, valid_seconds: int = 900) -> str:
    payload = f"{customer_id}.{int(time.time()) + valid_seconds}"
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{signature}"


if __name__ == "__main__":
    secret, customer, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(touchpoint_identity(secret, customer, seconds))
