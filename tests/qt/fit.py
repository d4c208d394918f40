"""Is any text cut off? A visible label or button is clipped when the space the layout gave it
is smaller than the text needs: narrower than its size hint (a label that does not wrap, a
button), or lower than the height its wrapped text needs at its width."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractButton, QLabel, QWidget


def clipped(root: QWidget) -> list[str]:
    found: list[str] = []
    for widget in [root, *root.findChildren(QWidget)]:
        if not widget.isVisibleTo(root) or not isinstance(widget, (QLabel, QAbstractButton)):
            continue
        if not widget.text():
            continue
        size, hint = widget.size(), widget.sizeHint()
        if isinstance(widget, QLabel) and widget.wordWrap():
            needed_w, needed_h = widget.minimumSizeHint().width(), widget.heightForWidth(size.width())
        else:
            needed_w, needed_h = hint.width(), hint.height()
        if size.width() < needed_w or size.height() < needed_h:
            name = widget.objectName() or type(widget).__name__
            found.append(f"{name} {widget.text()!r}: {size.width()}x{size.height()} < {needed_w}x{needed_h}")
    return found
