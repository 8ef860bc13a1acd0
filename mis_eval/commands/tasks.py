"""`mis-eval tasks`: where the lmms-eval task files are, and which tasks they define."""

from __future__ import annotations

import argparse

from mis_tasks.discovery import TASKS_DIR

HELP = "list the lmms-eval tasks and groups mis-eval adds (or print their --include_path)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--path", action="store_true", help="print only the folder to pass as lmms-eval --include_path"
    )


def list_tasks() -> list[str]:
    from lmms_eval.tasks import TaskManager

    tm = TaskManager("ERROR", include_path=TASKS_DIR)
    return sorted(
        name for name, entry in tm.task_index.items() if str(entry.get("yaml_path", "")).startswith(TASKS_DIR)
    )


def run(args: argparse.Namespace) -> int:
    if args.path:
        print(TASKS_DIR)
        return 0
    for name in list_tasks():
        print(name)
    return 0
