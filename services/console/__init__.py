"""The site console: the web pages clinic staff work in, one process per site.

It holds no records and decides nothing: every page calls the site's services (intake, sessions, billing,
outcomes) with the signed-in user's own token, so every rule and permission stays in the services, and a refusal
comes back as the service's own message. What a page offers follows the one permission table
(shared/auth/permissions.py); the services still decide each call.
"""
