"""Installs `mis_eval_tasks.pth` next to the packages (wheel and editable installs).

The .pth lets lmms-eval find mis-eval's tasks with no flag (see mis_tasks/discovery.py).
setuptools has no option for a top-level .pth, so the wheel gets it from build_py and the
editable wheel from its file strategy; metadata stays in setup.cfg.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH = "mis_eval_tasks.pth"
HERE = Path(__file__).resolve().parent


class BuildPyWithPth(build_py):
    def run(self) -> None:
        super().run()
        self.copy_file(str(HERE / PTH), str(Path(self.build_lib) / PTH), preserve_mode=False)


class EditableWheelWithPth(editable_wheel):
    def _select_strategy(self, name, tag, build_lib):
        inner = super()._select_strategy(name, tag, build_lib)

        class WithPth:
            def __enter__(self):
                inner.__enter__()
                return self

            def __exit__(self, *exc):
                return inner.__exit__(*exc)

            def __call__(self, wheel, files, mapping):
                inner(wheel, files, mapping)
                wheel.writestr(PTH, (HERE / PTH).read_bytes())

        return WithPth()


setup(cmdclass={"build_py": BuildPyWithPth, "editable_wheel": EditableWheelWithPth})
