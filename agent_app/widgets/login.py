"""The login form: server, user, password, DN, remember me. Emits `login_requested` with checked
values. A server URL fixed by IT (/etc/tandem/agent.toml) is shown read-only."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QFormLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from agent_app.errors import LoginInputError
from agent_app.validation import LoginInput, validate_login


class LoginWidget(QWidget):
    login_requested = Signal(object)  # LoginInput

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.server = self._field("loginServer", self.tr("http://server:8000"))
        self.user = self._field("loginUser", self.tr("user name"))
        self.password = self._field("loginPassword", self.tr("password"))
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.dn = self._field("loginDn", self.tr("e.g. 4711"))
        self.remember = QCheckBox(self.tr("&Remember me on this PC"), self)
        self.remember.setObjectName("loginRemember")
        self.remember.setAccessibleName(self.tr("Remember me on this PC"))
        self.remember.setToolTip(self.tr("Keeps your user name, DN and password in this PC's keyring."))
        self.server_fixed = False
        self.button = QPushButton(self.tr("&Log in"), self)
        self.button.setAccessibleName(self.tr("Log in"))
        self.button.setObjectName("loginButton")
        self.button.setDefault(True)
        self.error = QLabel("", self)
        self.error.setObjectName("loginError")
        self.error.setTextFormat(Qt.TextFormat.PlainText)  # server messages are not markup
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b00020;")

        form = QFormLayout()
        form.addRow(self.tr("&Server"), self.server)
        form.addRow(self.tr("&User"), self.user)
        form.addRow(self.tr("&Password"), self.password)
        form.addRow(self.tr("D&N"), self.dn)
        form.addRow("", self.remember)
        for label, field in (
            (self.tr("Server"), self.server),
            (self.tr("User"), self.user),
            (self.tr("Password"), self.password),
        ):
            field.setAccessibleName(label)
        self.dn.setAccessibleName(self.tr("DN (your phone's extension)"))
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.button)
        layout.addWidget(self.error)
        layout.addStretch(1)

        self.button.clicked.connect(self.submit)
        for field in (self.server, self.user, self.password, self.dn):
            field.returnPressed.connect(self.submit)

    def _field(self, name: str, placeholder: str) -> QLineEdit:
        field = QLineEdit(self)
        field.setObjectName(name)
        field.setPlaceholderText(placeholder)
        return field

    def set_values(self, server: str = "", user: str = "", dn: str = "", password: str = "") -> None:
        if not self.server_fixed:
            self.server.setText(server)
        self.user.setText(user)
        self.dn.setText(dn)
        self.password.setText(password)

    def fix_server(self, url: str) -> None:
        """IT set the server for this PC: shown, not editable."""
        self.server_fixed = True
        self.server.setText(url)
        self.server.setReadOnly(True)
        self.server.setToolTip(self.tr("Set by your IT department for this PC."))

    def remember_unavailable(self, why: str) -> None:
        self.remember.setChecked(False)
        self.remember.setEnabled(False)
        self.remember.setToolTip(why)

    def submit(self) -> None:
        if not self.button.isEnabled():
            return
        try:
            values: LoginInput = validate_login(
                self.server.text(), self.user.text(), self.password.text(), self.dn.text()
            )
        except LoginInputError as exc:
            self.error.setText(str(exc))
            return
        self.error.setText("")
        self.login_requested.emit(values)

    def show_state(self, enabled: bool, error: str) -> None:
        self.button.setEnabled(enabled)
        for field in (self.server, self.user, self.password, self.dn):
            field.setEnabled(enabled)
        self.server.setReadOnly(self.server_fixed)
        self.error.setText(error)

    def clear_password(self) -> None:
        self.password.clear()
