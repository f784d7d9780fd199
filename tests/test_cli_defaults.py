"""Every default once: an option of a `denoiser` command defaults to what the library function it feeds does.

A command's runner (cli/runners/) hands its options to library functions, e.g.
`generate(..., num_per_label=args.num)`. The test reads those calls from the runner's source, following the
functions it hands `args` itself to (`options.run_settings(args)`), and compares each option's parser default
with the default of the parameter it is passed as. A repeatable option is left out: its default is the empty
list its values are appended to, where a function says "none" with None or ().
"""

from __future__ import annotations

import argparse
import ast
import inspect
import textwrap

import pytest

from denoiser.cli import COMMANDS, build_parser
from denoiser.generation import generate


def options_of(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The options of `parser` and of its sub-commands' parsers (`denoiser data download`), by destination."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                found.update(options_of(subparser))
        else:
            found[action.dest] = action
    return found


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(subparsers.choices)


def named(node: ast.expr, namespace: dict):
    """The object that a name or dotted name (`options.run_settings`) in a function's source stands for, or None."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id)
    if isinstance(node, ast.Attribute):
        return getattr(named(node.value, namespace), node.attr, None)
    return None


def is_args(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "args"


def option_passes(function, seen: set | None = None) -> list[tuple[object, inspect.Parameter, str]]:
    """(callee, parameter, destination) for every `callee(..., parameter=args.destination)` in `function`
    (by keyword or by position), and in the functions of the package that it hands `args` to."""
    seen = set() if seen is None else seen
    if function in seen:
        return []
    seen.add(function)
    passes = []
    for call in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(function)))):
        callee = named(call.func, function.__globals__) if isinstance(call, ast.Call) else None
        if not callable(callee):
            continue
        if inspect.isfunction(callee) and callee.__module__.startswith("denoiser") and any(map(is_args, call.args)):
            passes += option_passes(callee, seen)
        try:
            parameters = inspect.signature(callee).parameters
        except (TypeError, ValueError):  # a builtin without a signature
            continue
        given = list(zip(parameters, call.args)) + [(keyword.arg, keyword.value) for keyword in call.keywords]
        for name, value in given:
            if isinstance(value, ast.Attribute) and is_args(value.value) and name in parameters:
                passes.append((callee, parameters[name], value.attr))
    return passes


def default_mismatches(command) -> tuple[list[str], int]:
    """The options of `command` whose default differs from the parameter's they are passed as, and how many
    options were compared."""
    options = options_of(command_parsers()[command.name])
    mismatches, compared = [], 0
    for callee, parameter, destination in option_passes(command.runner()):
        action = options.get(destination)
        if action is None or isinstance(action, argparse._AppendAction) or parameter.default is parameter.empty:
            continue
        compared += 1
        if action.default != parameter.default:
            mismatches.append(
                f"denoiser {command.name} {'/'.join(action.option_strings) or destination}: default "
                f"{action.default!r}, but {callee.__qualname__}({parameter.name}=...) defaults to {parameter.default!r}"
            )
    return mismatches, compared


@pytest.mark.parametrize("command", COMMANDS, ids=[command.name for command in COMMANDS])
def test_every_option_defaults_to_what_the_function_it_is_passed_to_does(command):
    mismatches, _ = default_mismatches(command)
    assert not mismatches, "\n".join(mismatches)


def test_the_check_sees_the_options_that_runners_pass_on():
    """The calls are found: by keyword under another name, by position, and through a function given `args`."""
    by_command = {command.name: command for command in COMMANDS}
    passes = {
        name: {(parameter.name, destination) for _, parameter, destination in option_passes(by_command[name].runner())}
        for name in ("sample", "img2img", "train", "evaluate", "inpaint", "data", "web", "download")
    }
    assert ("num_per_label", "num") in passes["sample"]
    assert ("strength", "strength") in passes["img2img"]  # image_to_image(sampler, image, args.strength)
    assert ("preset", "preset") in passes["train"]  # options.run_settings(args) -> resolve_config(args.preset)
    assert {("num", "num"), ("nearest", "nearest")} <= passes["evaluate"]
    assert {("jump", "jump"), ("resample", "resample"), ("side", "side")} <= passes["inpaint"]
    assert {("threads", "threads"), ("shard_size", "shard_size")} <= passes["data"]
    assert {("port", "port"), ("host", "host")} <= passes["web"]
    assert ("to", "to") in passes["download"]


def test_a_default_that_differs_is_reported(monkeypatch):
    sample = next(command for command in COMMANDS if command.name == "sample")
    assert default_mismatches(sample)[0] == []
    monkeypatch.setitem(generate.__kwdefaults__, "num_per_label", 9)
    mismatches, compared = default_mismatches(sample)
    assert compared > 0
    assert mismatches == [
        "denoiser sample --num: default 8, but generate(num_per_label=...) defaults to 9",
    ]
