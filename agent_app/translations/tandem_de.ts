<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="de_DE">
<context>
    <name>AcwPanel</name>
    <message>
        <location filename="../widgets/acw_panel.py" line="30"/>
        <source>Time left in after-call work</source>
        <translation>Verbleibende Nachbearbeitungszeit</translation>
    </message>
    <message>
        <location filename="../widgets/acw_panel.py" line="33"/>
        <location filename="../widgets/acw_panel.py" line="88"/>
        <source>Disposition</source>
        <translation>Ergebnis</translation>
    </message>
    <message>
        <location filename="../widgets/acw_panel.py" line="36"/>
        <source>Notes</source>
        <translation>Notizen</translation>
    </message>
    <message>
        <location filename="../widgets/acw_panel.py" line="37"/>
        <source>Notes on this call (saved with the recording)</source>
        <translation>Notizen zu diesem Anruf (mit der Aufnahme gespeichert)</translation>
    </message>
    <message>
        <location filename="../widgets/acw_panel.py" line="44"/>
        <location filename="../widgets/acw_panel.py" line="88"/>
        <source>D&amp;isposition</source>
        <translation>&amp;Ergebnis</translation>
    </message>
    <message>
        <location filename="../widgets/acw_panel.py" line="46"/>
        <source>&amp;Notes</source>
        <translation>N&amp;otizen</translation>
    </message>
    <message>
        <location filename="../widgets/acw_panel.py" line="49"/>
        <source>After-call work</source>
        <translation>Nachbearbeitung</translation>
    </message>
    <message>
        <location filename="../widgets/acw_panel.py" line="50"/>
        <source>ACW limit</source>
        <translation>Nachbearbeitungslimit</translation>
    </message>
    <message>
        <location filename="../widgets/acw_panel.py" line="80"/>
        <source>— choose —</source>
        <translation>— wählen —</translation>
    </message>
    <message>
        <location filename="../widgets/acw_panel.py" line="100"/>
        <source>none</source>
        <translation>keines</translation>
    </message>
</context>
<context>
    <name>CallBar</name>
    <message>
        <location filename="../widgets/call_bar.py" line="29"/>
        <source>Tandem — call bar</source>
        <translation>Tandem — Anrufleiste</translation>
    </message>
    <message>
        <location filename="../widgets/call_bar.py" line="30"/>
        <source>Compact call bar</source>
        <translation>Kompakte Anrufleiste</translation>
    </message>
    <message>
        <location filename="../widgets/call_bar.py" line="31"/>
        <source>Caller</source>
        <translation>Anrufer</translation>
    </message>
    <message>
        <location filename="../widgets/call_bar.py" line="32"/>
        <source>Talk time</source>
        <translation>Gesprächsdauer</translation>
    </message>
    <message>
        <location filename="../widgets/call_bar.py" line="33"/>
        <source>Voice</source>
        <translation>Sprache</translation>
    </message>
    <message>
        <location filename="../widgets/call_bar.py" line="34"/>
        <source>Screen</source>
        <translation>Bildschirm</translation>
    </message>
    <message>
        <location filename="../widgets/call_bar.py" line="35"/>
        <source>Pause or resume the recording</source>
        <translation>Aufnahme pausieren oder fortsetzen</translation>
    </message>
    <message>
        <location filename="../widgets/call_bar.py" line="37"/>
        <source>Done with after-call work</source>
        <translation>Nachbearbeitung abschließen</translation>
    </message>
    <message>
        <location filename="../widgets/call_bar.py" line="38"/>
        <source>&amp;Done</source>
        <translation>&amp;Fertig</translation>
    </message>
    <message>
        <location filename="../widgets/call_bar.py" line="40"/>
        <source>Back to the full window</source>
        <translation>Zurück zum ganzen Fenster</translation>
    </message>
    <message>
        <location filename="../widgets/call_bar.py" line="41"/>
        <source>&amp;Full window</source>
        <translation>&amp;Ganzes Fenster</translation>
    </message>
    <message>
        <location filename="../widgets/call_bar.py" line="91"/>
        <source>Done</source>
        <translation>Fertig</translation>
    </message>
    <message>
        <location filename="../widgets/call_bar.py" line="93"/>
        <source>Full window</source>
        <translation>Ganzes Fenster</translation>
    </message>
</context>
<context>
    <name>CallPanel</name>
    <message>
        <location filename="../widgets/call_panel.py" line="45"/>
        <source>Pause warning</source>
        <translation>Pausenwarnung</translation>
    </message>
    <message>
        <location filename="../widgets/call_panel.py" line="52"/>
        <source>Caller</source>
        <translation>Anrufer</translation>
    </message>
    <message>
        <location filename="../widgets/call_panel.py" line="53"/>
        <source>Number</source>
        <translation>Nummer</translation>
    </message>
    <message>
        <location filename="../widgets/call_panel.py" line="54"/>
        <source>Direction</source>
        <translation>Richtung</translation>
    </message>
    <message>
        <location filename="../widgets/call_panel.py" line="55"/>
        <source>Line</source>
        <translation>Leitung</translation>
    </message>
    <message>
        <location filename="../widgets/call_panel.py" line="56"/>
        <source>Service</source>
        <translation>Service</translation>
    </message>
    <message>
        <location filename="../widgets/call_panel.py" line="57"/>
        <source>Queue</source>
        <translation>Warteschlange</translation>
    </message>
    <message>
        <location filename="../widgets/call_panel.py" line="50"/>
        <source>Call data</source>
        <translation>Anrufdaten</translation>
    </message>
    <message>
        <location filename="../widgets/call_panel.py" line="59"/>
        <source>Talk time</source>
        <translation>Gesprächsdauer</translation>
    </message>
    <message>
        <location filename="../widgets/call_panel.py" line="60"/>
        <source>Voice</source>
        <translation>Sprache</translation>
    </message>
    <message>
        <location filename="../widgets/call_panel.py" line="61"/>
        <source>Screen</source>
        <translation>Bildschirm</translation>
    </message>
</context>
<context>
    <name>HealthPanel</name>
    <message>
        <location filename="../widgets/health_panel.py" line="30"/>
        <source>Screen recorder health</source>
        <translation>Zustand des Bildschirmrekorders</translation>
    </message>
    <message>
        <location filename="../widgets/health_panel.py" line="33"/>
        <source>Screen recorder state</source>
        <translation>Status des Bildschirmrekorders</translation>
    </message>
    <message>
        <location filename="../widgets/health_panel.py" line="36"/>
        <source>Screen recorder details</source>
        <translation>Details des Bildschirmrekorders</translation>
    </message>
    <message>
        <location filename="../widgets/health_panel.py" line="39"/>
        <source>Screen recorder problem on this PC</source>
        <translation>Problem des Bildschirmrekorders auf diesem PC</translation>
    </message>
    <message>
        <location filename="../widgets/health_panel.py" line="42"/>
        <source>Upload of the current screen segment</source>
        <translation>Upload des aktuellen Bildschirmabschnitts</translation>
    </message>
</context>
<context>
    <name>LoginWidget</name>
    <message>
        <location filename="../widgets/login.py" line="18"/>
        <source>http://server:8000</source>
        <translation>http://server:8000</translation>
    </message>
    <message>
        <location filename="../widgets/login.py" line="19"/>
        <source>user name</source>
        <translation>Benutzername</translation>
    </message>
    <message>
        <location filename="../widgets/login.py" line="20"/>
        <source>password</source>
        <translation>Passwort</translation>
    </message>
    <message>
        <location filename="../widgets/login.py" line="22"/>
        <source>e.g. 4711</source>
        <translation>z. B. 4711</translation>
    </message>
    <message>
        <location filename="../widgets/login.py" line="23"/>
        <source>&amp;Remember me on this PC</source>
        <translation>Auf diesem PC &amp;merken</translation>
    </message>
    <message>
        <location filename="../widgets/login.py" line="25"/>
        <source>Remember me on this PC</source>
        <translation>Auf diesem PC merken</translation>
    </message>
    <message>
        <location filename="../widgets/login.py" line="26"/>
        <source>Keeps your user name, DN and password in this PC&apos;s keyring.</source>
        <translation>Speichert Benutzername, Nebenstelle und Passwort im Schlüsselbund dieses PCs.</translation>
    </message>
    <message>
        <location filename="../widgets/login.py" line="28"/>
        <source>&amp;Log in</source>
        <translation>&amp;Anmelden</translation>
    </message>
    <message>
        <location filename="../widgets/login.py" line="29"/>
        <source>Log in</source>
        <translation>Anmelden</translation>
    </message>
    <message>
        <location filename="../widgets/login.py" line="39"/>
        <source>&amp;Server</source>
        <translation>&amp;Server</translation>
    </message>
    <message>
        <location filename="../widgets/login.py" line="40"/>
        <source>&amp;User</source>
        <translation>&amp;Benutzer</translation>
    </message>
    <message>
        <location filename="../widgets/login.py" line="41"/>
        <source>&amp;Password</source>
        <translation>&amp;Passwort</translation>
    </message>
    <message>
        <location filename="../widgets/login.py" line="42"/>
        <source>D&amp;N</source>
        <translation>&amp;Nebenstelle</translation>
    </message>
    <message>
        <location filename="../widgets/login.py" line="45"/>
        <source>Server</source>
        <translation>Server</translation>
    </message>
    <message>
        <location filename="../widgets/login.py" line="46"/>
        <source>User</source>
        <translation>Benutzer</translation>
    </message>
    <message>
        <location filename="../widgets/login.py" line="47"/>
        <source>Password</source>
        <translation>Passwort</translation>
    </message>
    <message>
        <location filename="../widgets/login.py" line="50"/>
        <source>DN (your phone&apos;s extension)</source>
        <translation>Nebenstelle (Ihre Telefonnummer)</translation>
    </message>
    <message>
        <location filename="../widgets/login.py" line="79"/>
        <source>Set by your IT department for this PC.</source>
        <translation>Von Ihrer IT für diesen PC festgelegt.</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <location filename="../widgets/call_bar_mode.py" line="53"/>
        <location filename="../widgets/call_bar_mode.py" line="56"/>
        <source>Pause or resume the recording (Alt+P)</source>
        <translation>Aufnahme pausieren oder fortsetzen (Alt+P)</translation>
    </message>
    <message>
        <location filename="../widgets/main_window.py" line="156"/>
        <source>&amp;Done</source>
        <translation>&amp;Fertig</translation>
    </message>
    <message>
        <location filename="../widgets/main_window.py" line="157"/>
        <source>Done</source>
        <translation>Fertig</translation>
    </message>
    <message>
        <location filename="../widgets/main_window.py" line="159"/>
        <source>Log &amp;out</source>
        <translation>A&amp;bmelden</translation>
    </message>
    <message>
        <location filename="../widgets/main_window.py" line="161"/>
        <source>Log out</source>
        <translation>Abmelden</translation>
    </message>
    <message>
        <location filename="../widgets/call_bar_mode.py" line="61"/>
        <source>Compact call &amp;bar</source>
        <translation>Kompakte &amp;Anrufleiste</translation>
    </message>
    <message>
        <location filename="../widgets/call_bar_mode.py" line="64"/>
        <source>Compact call bar</source>
        <translation>Kompakte Anrufleiste</translation>
    </message>
    <message>
        <location filename="../widgets/call_bar_mode.py" line="66"/>
        <source>A small always-on-top bar instead of this window</source>
        <translation>Eine kleine Leiste immer im Vordergrund statt dieses Fensters</translation>
    </message>
    <message>
        <location filename="../widgets/main_window.py" line="233"/>
        <source>Screen recorder problem</source>
        <translation>Problem mit dem Bildschirmrekorder</translation>
    </message>
    <message>
        <location filename="../widgets/call_bar_mode.py" line="103"/>
        <source>Pause hotkey not available: %1</source>
        <translation>Pausen-Tastenkürzel nicht verfügbar: %1</translation>
    </message>
    <message>
        <location filename="../widgets/call_bar_mode.py" line="111"/>
        <source>Pause or resume from any program: %1</source>
        <translation>Pause oder Fortsetzen aus jedem Programm: %1</translation>
    </message>
    <message>
        <location filename="../widgets/main_window.py" line="487"/>
        <source>Tandem is still running</source>
        <translation>Tandem läuft weiter</translation>
    </message>
    <message>
        <location filename="../widgets/main_window.py" line="488"/>
        <source>You are logged in. Use the tray icon to log out.</source>
        <translation>Sie sind angemeldet. Abmelden über das Symbol im Infobereich.</translation>
    </message>
</context>
<context>
    <name>PauseReasonDialog</name>
    <message>
        <location filename="../widgets/pause_reason_dialog.py" line="27"/>
        <source>Your team must give a reason for every pause: choose one and press Enter.</source>
        <translation>Ihr Team muss für jede Pause einen Grund angeben: wählen Sie einen aus und drücken Sie die Eingabetaste.</translation>
    </message>
    <message>
        <location filename="../widgets/pause_reason_dialog.py" line="30"/>
        <source>Choose one of the reasons in the list.</source>
        <translation>Wählen Sie einen der Gründe in der Liste.</translation>
    </message>
    <message>
        <location filename="../widgets/pause_reason_dialog.py" line="42"/>
        <source>Why did you pause?</source>
        <translation>Warum haben Sie pausiert?</translation>
    </message>
    <message>
        <location filename="../widgets/pause_reason_dialog.py" line="47"/>
        <source>The recording is paused. Choose the reason and press Enter.</source>
        <translation>Die Aufnahme ist pausiert. Wählen Sie den Grund und drücken Sie die Eingabetaste.</translation>
    </message>
    <message>
        <location filename="../widgets/pause_reason_dialog.py" line="49"/>
        <source>The recording is paused. Choose the reason and press Enter, or Escape for none.</source>
        <translation>Die Aufnahme ist pausiert. Wählen Sie den Grund und drücken Sie die Eingabetaste, oder Escape für keinen.</translation>
    </message>
    <message>
        <location filename="../widgets/pause_reason_dialog.py" line="55"/>
        <source>Pause reason</source>
        <translation>Pausengrund</translation>
    </message>
    <message>
        <location filename="../widgets/pause_reason_dialog.py" line="67"/>
        <source>Save reason</source>
        <translation>Grund speichern</translation>
    </message>
    <message>
        <location filename="../widgets/pause_reason_dialog.py" line="71"/>
        <source>No reason</source>
        <translation>Kein Grund</translation>
    </message>
</context>
<context>
    <name>StateSelector</name>
    <message>
        <location filename="../widgets/state_selector.py" line="27"/>
        <source>My state</source>
        <translation>Mein Status</translation>
    </message>
    <message>
        <location filename="../widgets/state_selector.py" line="28"/>
        <source>Ready, or Not Ready with a reason</source>
        <translation>Bereit, oder Nicht bereit mit Grund</translation>
    </message>
    <message>
        <location filename="../widgets/state_selector.py" line="29"/>
        <source>&amp;My state:</source>
        <translation>&amp;Mein Status:</translation>
    </message>
    <message>
        <location filename="../widgets/state_selector.py" line="35"/>
        <source>My &amp;recordings</source>
        <translation>Meine Auf&amp;nahmen</translation>
    </message>
    <message>
        <location filename="../widgets/state_selector.py" line="38"/>
        <source>Open your own recordings in the web player (your browser)</source>
        <translation>Ihre eigenen Aufnahmen im Web-Player öffnen (Ihr Browser)</translation>
    </message>
    <message>
        <location filename="../widgets/state_selector.py" line="40"/>
        <source>My recordings</source>
        <translation>Meine Aufnahmen</translation>
    </message>
</context>
<context>
    <name>view</name>
    <message>
        <location filename="../i18n.py" line="23"/>
        <source>Pause</source>
        <translation>Pause</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="24"/>
        <source>Pausing…</source>
        <translation>Pausiere…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="25"/>
        <source>Resume</source>
        <translation>Fortsetzen</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="26"/>
        <source>Resuming…</source>
        <translation>Setze fort…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="27"/>
        <source>Resume (pause NOT confirmed)</source>
        <translation>Fortsetzen (Pause NICHT bestätigt)</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="28"/>
        <source>Logged out</source>
        <translation>Abgemeldet</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="29"/>
        <source>Ready</source>
        <translation>Bereit</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="30"/>
        <source>Not Ready</source>
        <translation>Nicht bereit</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="31"/>
        <source>On call</source>
        <translation>Im Gespräch</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="32"/>
        <source>On call — recording paused</source>
        <translation>Im Gespräch — Aufnahme pausiert</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="33"/>
        <source>On call — pause NOT confirmed</source>
        <translation>Im Gespräch — Pause NICHT bestätigt</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="34"/>
        <source>On call — pausing…</source>
        <translation>Im Gespräch — Pause wird eingelegt…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="35"/>
        <source>After-call work</source>
        <translation>Nachbearbeitung</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="36"/>
        <source>No call</source>
        <translation>Kein Anruf</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="37"/>
        <source>Inbound</source>
        <translation>Eingehend</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="38"/>
        <source>Outbound</source>
        <translation>Ausgehend</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="39"/>
        <source>Not known</source>
        <translation>Unbekannt</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="40"/>
        <source>Voice: recording</source>
        <translation>Sprache: Aufnahme läuft</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="41"/>
        <source>Voice: paused</source>
        <translation>Sprache: pausiert</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="42"/>
        <source>Voice: stopped (saved)</source>
        <translation>Sprache: beendet (gespeichert)</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="43"/>
        <source>Voice: recording FAILED</source>
        <translation>Sprache: Aufnahme FEHLGESCHLAGEN</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="44"/>
        <source>Voice: recording — pausing…</source>
        <translation>Sprache: Aufnahme läuft — wird pausiert…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="45"/>
        <source>Voice: on hold — waiting for the screen recorder…</source>
        <translation>Sprache: angehalten — warte auf den Bildschirmrekorder…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="46"/>
        <source>Voice: on hold — screen pause not confirmed</source>
        <translation>Sprache: angehalten — Bildschirmpause nicht bestätigt</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="47"/>
        <source>Screen: not sampled for this call</source>
        <translation>Bildschirm: für diesen Anruf nicht ausgewählt</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="48"/>
        <source>Screen: starting…</source>
        <translation>Bildschirm: startet…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="49"/>
        <source>Screen: recording</source>
        <translation>Bildschirm: Aufnahme läuft</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="50"/>
        <source>Screen: paused</source>
        <translation>Bildschirm: pausiert</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="51"/>
        <source>Screen: pausing…</source>
        <translation>Bildschirm: wird pausiert…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="52"/>
        <source>Screen: stopped, upload pending</source>
        <translation>Bildschirm: beendet, Upload ausstehend</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="53"/>
        <source>Screen: stopped (uploaded)</source>
        <translation>Bildschirm: beendet (hochgeladen)</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="54"/>
        <source>Screen: recording FAILED</source>
        <translation>Bildschirm: Aufnahme FEHLGESCHLAGEN</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="55"/>
        <source>Screen: NOT recorded — the screen recorder is not connected</source>
        <translation>Bildschirm: wird NICHT aufgenommen — der Bildschirmrekorder ist nicht verbunden</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="56"/>
        <source>Screen: pause NOT confirmed — it may still be recording</source>
        <translation>Bildschirm: Pause NICHT bestätigt — wird womöglich noch aufgenommen</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="57"/>
        <source>Screen: stopping capture…</source>
        <translation>Bildschirm: Aufnahme wird angehalten…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="58"/>
        <source>Screen: restarting capture…</source>
        <translation>Bildschirm: Aufnahme startet neu…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="59"/>
        <source>Screen: finishing…</source>
        <translation>Bildschirm: wird abgeschlossen…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="60"/>
        <source>Screen pause NOT confirmed: the screen may still be recording</source>
        <translation>Bildschirmpause NICHT bestätigt: Der Bildschirm wird womöglich noch aufgenommen</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="62"/>
        <source>Recording</source>
        <translation>Aufnahme läuft</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="63"/>
        <source>Paused</source>
        <translation>Pausiert</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="64"/>
        <source>Stopped (saved)</source>
        <translation>Beendet (gespeichert)</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="65"/>
        <source>Recording FAILED</source>
        <translation>Aufnahme FEHLGESCHLAGEN</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="66"/>
        <source>Recording — pausing…</source>
        <translation>Aufnahme läuft — wird pausiert…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="67"/>
        <source>On hold — waiting for the screen recorder…</source>
        <translation>Angehalten — warte auf den Bildschirmrekorder…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="68"/>
        <source>On hold — screen pause not confirmed</source>
        <translation>Angehalten — Bildschirmpause nicht bestätigt</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="69"/>
        <source>Not sampled for this call</source>
        <translation>Für diesen Anruf nicht ausgewählt</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="70"/>
        <source>Starting…</source>
        <translation>Startet…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="71"/>
        <source>Stopped, upload pending</source>
        <translation>Beendet, Upload ausstehend</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="72"/>
        <source>Stopped (uploaded)</source>
        <translation>Beendet (hochgeladen)</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="73"/>
        <source>NOT recorded — the screen recorder is not connected</source>
        <translation>Wird NICHT aufgenommen — der Bildschirmrekorder ist nicht verbunden</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="74"/>
        <source>Pause NOT confirmed — it may still be recording</source>
        <translation>Pause NICHT bestätigt — wird womöglich noch aufgenommen</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="75"/>
        <source>Stopping capture…</source>
        <translation>Aufnahme wird angehalten…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="76"/>
        <source>Restarting capture…</source>
        <translation>Aufnahme startet neu…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="77"/>
        <source>Finishing…</source>
        <translation>Wird abgeschlossen…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="78"/>
        <source>Not connected</source>
        <translation>Nicht verbunden</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="79"/>
        <source>Connecting…</source>
        <translation>Verbindung wird aufgebaut…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="80"/>
        <source>Connected</source>
        <translation>Verbunden</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="81"/>
        <source>Connection lost — reconnecting…</source>
        <translation>Verbindung verloren — neuer Versuch…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="82"/>
        <source>The server refused the event connection</source>
        <translation>Der Server hat die Ereignisverbindung abgelehnt</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="83"/>
        <source>Logging in…</source>
        <translation>Anmeldung läuft…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="84"/>
        <source>Logging out…</source>
        <translation>Abmeldung läuft…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="85"/>
        <source>Pausing recording…</source>
        <translation>Aufnahme wird pausiert…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="86"/>
        <source>Resuming recording…</source>
        <translation>Aufnahme wird fortgesetzt…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="87"/>
        <source>Finishing after-call work…</source>
        <translation>Nachbearbeitung wird abgeschlossen…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="88"/>
        <source>Changing your state…</source>
        <translation>Status wird geändert…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="89"/>
        <source>Disposition</source>
        <translation>Ergebnis</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="90"/>
        <source>Disposition (required)</source>
        <translation>Ergebnis (Pflicht)</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="91"/>
        <source>Disposition (optional)</source>
        <translation>Ergebnis (optional)</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="92"/>
        <source>Choose a disposition, then Done.</source>
        <translation>Ergebnis wählen, dann Fertig.</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="93"/>
        <source>A disposition is required, but none is defined: ask your administrator.</source>
        <translation>Ein Gesprächsergebnis ist Pflicht, aber keines ist angelegt: Bitte wenden Sie sich an Ihre Administration.</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="94"/>
        <source>ACW limit reached — finishing…</source>
        <translation>Nachbearbeitungslimit erreicht — wird beendet…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="95"/>
        <source>Time left: %1</source>
        <translation>Verbleibend: %1</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="96"/>
        <source>Not Ready — %1</source>
        <translation>Nicht bereit — %1</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="97"/>
        <source>Not Ready ▸ %1</source>
        <translation>Nicht bereit ▸ %1</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="99"/>
        <source>Screen recorder failed</source>
        <translation>Bildschirmrekorder ausgefallen</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="100"/>
        <source>Recorder storage full — screen capture stopped</source>
        <translation>Rekorderspeicher voll — Bildschirmaufnahme gestoppt</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="101"/>
        <source>This PC&apos;s disk is almost full</source>
        <translation>Die Festplatte dieses PCs ist fast voll</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="102"/>
        <source>Screen uploads are falling behind</source>
        <translation>Bildschirm-Uploads hängen hinterher</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="103"/>
        <source>Recorder clock not synchronised with the server</source>
        <translation>Rekorderuhr nicht mit dem Server synchronisiert</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="104"/>
        <source>The recorder reported an error</source>
        <translation>Der Rekorder hat einen Fehler gemeldet</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="105"/>
        <source>Recorder: connected, idle</source>
        <translation>Rekorder: verbunden, bereit</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="106"/>
        <source>Recorder: recording</source>
        <translation>Rekorder: Aufnahme läuft</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="107"/>
        <source>Recorder: paused</source>
        <translation>Rekorder: pausiert</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="108"/>
        <source>Recorder: uploading</source>
        <translation>Rekorder: lädt hoch</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="109"/>
        <source>Recorder: finishing the recording</source>
        <translation>Rekorder: schließt die Aufnahme ab</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="110"/>
        <source>Recorder: storage full</source>
        <translation>Rekorder: Speicher voll</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="111"/>
        <source>Recorder: failed</source>
        <translation>Rekorder: ausgefallen</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="112"/>
        <source>Recorder: waiting for the server…</source>
        <translation>Rekorder: warte auf den Server…</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="113"/>
        <source>Recorder: connected, waiting for its first report</source>
        <translation>Rekorder: verbunden, warte auf die erste Meldung</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="114"/>
        <source>No screen recorder on this PC has reported — your screen is not being recorded</source>
        <translation>Kein Bildschirmrekorder auf diesem PC hat sich gemeldet — Ihr Bildschirm wird nicht aufgenommen</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="117"/>
        <source>Ask IT to check that the Tandem recorder runs on this PC.</source>
        <translation>Bitten Sie die IT zu prüfen, ob der Tandem-Rekorder auf diesem PC läuft.</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="118"/>
        <source>Screen recorder not responding — your screen may not be recorded</source>
        <translation>Bildschirmrekorder antwortet nicht — Ihr Bildschirm wird womöglich nicht aufgenommen</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="119"/>
        <source>Screen recorder disconnected — your screen is not being recorded</source>
        <translation>Bildschirmrekorder getrennt — Ihr Bildschirm wird nicht aufgenommen</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="120"/>
        <source>Uploads pending: %1</source>
        <translation>Ausstehende Uploads: %1</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="121"/>
        <source>Uploading a screen segment: %1</source>
        <translation>Bildschirmabschnitt wird hochgeladen: %1</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="122"/>
        <source>Spool: %1</source>
        <translation>Zwischenspeicher: %1</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="123"/>
        <source>Last error: %1</source>
        <translation>Letzter Fehler: %1</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="126"/>
        <source>Screen recorder not running: %1</source>
        <translation>Bildschirmrekorder läuft nicht: %1</translation>
    </message>
    <message>
        <location filename="../i18n.py" line="127"/>
        <source>Screen recorder cannot record: %1</source>
        <translation>Bildschirmrekorder kann nicht aufnehmen: %1</translation>
    </message>
</context>
</TS>
