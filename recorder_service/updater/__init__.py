"""Signed self-update of the agent PC bundles (issue 15 item 5).

``policy`` decides whether and when (pure), ``tuf_client`` fetches and verifies a release with
python-tuf, ``apply`` installs it side by side and switches to it only once it reports healthy.
"""
