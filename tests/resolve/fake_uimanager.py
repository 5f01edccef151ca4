"""A stand-in for Fusion's UIManager and UIDispatcher: enough to build the ipfacediff window,
read and set widget properties, and fire its events from a test.

In: the calls plugin_resolve.ui makes (ui.VGroup/HGroup/Label/LineEdit/ComboBox/SpinBox/
Button with a props dict and/or a child list, disp.AddWindow, win.GetItems/On/Show/Hide,
disp.RunLoop/ExitLoop). Out: widgets as plain objects; `window.click("Edit")` runs a handler.
"""

from __future__ import annotations


class Widget:
    def __init__(self, kind: str, props: dict, children: list):
        self.kind, self.children = kind, children
        self.Text, self.Enabled, self.CurrentIndex, self.Value = "", True, 0, 0
        self.items: list[str] = []
        self.__dict__.update(props)

    def AddItem(self, text):
        self.items.append(text)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


class FakeUI:
    def __getattr__(self, kind):
        def make(*args):
            props = next((a for a in args if isinstance(a, dict)), {})
            children = next((a for a in args if isinstance(a, list)), [])
            return Widget(kind, props, children)
        return make


class Handlers:
    def __init__(self):
        self.__dict__["by_id"] = {}

    def __getattr__(self, widget_id):
        return self.by_id.setdefault(widget_id, type("Events", (), {})())


class FakeWindow:
    def __init__(self, props: dict, root: Widget):
        self.props, self.root, self.On = props, root, Handlers()
        self.shown = False

    def GetItems(self):
        return {w.ID: w for w in self.root.walk() if hasattr(w, "ID")}

    def Find(self, widget_id):
        return self.GetItems().get(widget_id)

    def Show(self):
        self.shown = True

    def Hide(self):
        self.shown = False

    def click(self, widget_id):
        getattr(self.On, widget_id).Clicked({"who": widget_id})


class FakeDispatcher:
    def __init__(self, ui):
        self.ui, self.windows, self.exited, self.script = ui, [], False, None

    def AddWindow(self, props, root):
        self.windows.append(FakeWindow(props, root))
        return self.windows[-1]

    def RunLoop(self):
        if self.script is not None:
            self.script(self.windows[-1])

    def ExitLoop(self):
        self.exited = True
