"""Remember me on the login form: the keyring read at start and written after a login, both on
the window's `TaskRunner` (a keyring may block, e.g. to ask for its unlock password)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent_app.bridge import TaskRunner
from agent_app.keyring_store import CredentialStore, Remembered
from agent_app.validation import LoginInput
from agent_app.widgets.login import LoginWidget

log = logging.getLogger(__name__)


class RememberMe:
    def __init__(self, runner: TaskRunner, form: LoginWidget, store: CredentialStore | None) -> None:
        self._runner, self._form, self._store = runner, form, store

    def load(self, still_wanted: Callable[[], bool]) -> None:
        """Fill the form from the keyring, unless the agent has started typing (or logged in)."""
        store = self._store
        if store is None:
            self._form.remember_unavailable("Remember me is not set up in this desktop.")
            return

        def found(entry: Remembered | None) -> None:
            if entry is None or not still_wanted() or self._form.user.text():
                return
            self._form.set_values(entry.server_url, entry.username, entry.dn, entry.password)
            self._form.remember.setChecked(True)

        if not self._runner.submit(store.load, found, self._failed):
            self._form.remember_unavailable("The desktop is busy.")

    def after_login(self, values: LoginInput) -> None:
        """Keep the login in the keyring, or forget it when the box is unticked."""
        store = self._store
        if store is None or not self._form.remember.isEnabled():
            return
        if self._form.remember.isChecked():
            entry = Remembered(values.server_url, values.username, values.dn, values.password)
            self._runner.submit(lambda: store.save(entry), lambda _: None, self._failed)
        else:
            self._runner.submit(store.forget, lambda _: None, self._failed)

    def _failed(self, exc: Exception) -> None:
        self._form.remember_unavailable(str(exc))
        log.warning("remember me: %s", exc)
