"""Signed self-update of the agent PC bundles (issue 15 item 5).

``policy`` decides whether and when (pure), ``tuf_client`` fetches and verifies a release with
python-tuf, ``apply`` unpacks it beside the running one, ``layout`` / ``layout_windows`` switch
``current``; ``system`` is the PC's updater that runs them (its self-test before the switch), and
``in_recorder`` moves each idle recorder to the new ``current``.
"""
