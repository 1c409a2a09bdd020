"""What the command line refused, said so a user can act on it: the config file and line where its YAML breaks,
the closest valid options to an unknown one — instead of jsonargparse's usage dump."""

import argparse
import difflib
import importlib
import re
from pathlib import Path
from typing import NoReturn

import yaml
from lightning.pytorch.cli import LightningArgumentParser


class ArgumentProblem(Exception):
    """What jsonargparse refused, raised instead of its usage dump; ``build_cli`` explains it as an FtlitError."""

    def __init__(self, message: str, parser: LightningArgumentParser) -> None:
        super().__init__(message)
        self.parser = parser  # the subcommand's parser when the problem is in a subcommand's options


class FtlitArgumentParser(LightningArgumentParser):
    """LightningCLI's parser (its ``parser_class``), whose errors end as one ``ftlit: error:`` paragraph."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:  # the parsers jsonargparse makes to try alternatives expect its ArgumentError
            super().error(message, ex)
        raise ArgumentProblem(message, getattr(ex, "subcommand_parser", None) or self) from ex


# How jsonargparse words an unknown option: of a class's init_args (command line or config), on the command line,
# in a config
_CLASS_OPTION = re.compile(
    r"Parser key \"(?P<group>[\w.]+)\":.*?given class_path '(?P<class_path>[\w.]+)':\s*"
    r"Option '(?P<name>[\w.]+)' is not accepted",
    re.S,
)
_COMMAND_LINE_OPTION = re.compile(r"^unrecognized arguments: (?P<name>-[^\s=]+)")
_CONFIG_OPTION = re.compile(r"^Subcommand '\w+' does not accept option '(?P<name>[\w.]+)'")
# How it words a problem with a class given to a callable option (--model.optimizer, --model.lr_scheduler)
_CALLABLE = re.compile(
    r'Parser key "(?P<group>\w+)":.*?Parser key "(?P<key>\w+)":.*?expects a function or a callable class: '
    r"(?P<reason>[^\n]*?)\.*(?: Got value: Namespace\(class_path='(?P<class_path>[\w.]+)'|\n)",
    re.S,
)
# … and where it names the class (one it could not import, or the first class given), when that line does not
_GIVEN = re.compile(r"(?:Expected a path but |Given value: Namespace\(class_path=')(?P<path>[\w.]+)")
#: What a callable option makes, and where its classes are found (for "did you mean")
_CALLABLE_KINDS = {
    "optimizer": ("an optimizer", "torch.optim", "torch.optim.Optimizer", "AdamW"),
    "lr_scheduler": ("a schedule", "torch.optim.lr_scheduler", "torch.optim.lr_scheduler.LRScheduler", "StepLR"),
}


def explain_argument_problem(problem: ArgumentProblem, args: list[str]) -> str:
    """One paragraph for what jsonargparse refused: the config file and line where its YAML breaks, or the closest
    valid options to an unknown one; else jsonargparse's own message."""
    cause = problem.__cause__
    while cause is not None and not isinstance(cause, yaml.MarkedYAMLError):
        cause = cause.__cause__ or cause.__context__
    if cause is not None:
        return _yaml_problem(cause, args)
    prog = problem.parser.prog.replace(" [options]", "")
    message = str(problem)
    explained = _callable_problem(message, args, prog) or _unknown_option(message, problem.parser, args, prog)
    return explained or (message if "\n" in message else f"{message} (`{prog} --help` lists the options)")


def _yaml_problem(err: yaml.MarkedYAMLError, args: list[str]) -> str:
    """Where a config stops being YAML, by file: jsonargparse hands YAML the file's text, named "<unicode string>"."""
    source = "a config given on the command line"
    for value in (arg.partition("=")[2] or arg for arg in args):
        if Path(value).suffix.lower() in (".yaml", ".yml", ".json") and Path(value).is_file():
            try:
                yaml.safe_load(Path(value).read_text(errors="replace"))
            except yaml.MarkedYAMLError as in_file:
                source, err = f"config file '{value}'", in_file
                break
    mark = err.problem_mark or err.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    context = ""
    if err.problem and err.context and err.context_mark:
        context = f" ({err.context} from line {err.context_mark.line + 1}, column {err.context_mark.column + 1})"
    return f"YAML syntax error in {source}{where}: {err.problem or err.context}{context}. Fix the YAML there."


def _unknown_option(message: str, parser: LightningArgumentParser, args: list[str], prog: str) -> str | None:
    """An unknown option named with the closest valid ones (of the parser, or of the class it was given to)."""
    if found := _CLASS_OPTION.search(message):
        group, class_path, name = found["group"], found["class_path"], found["name"]
        on_command_line = any(arg.split("=")[0] in (f"--{group}.{name}", f"--{group}.init_args.{name}") for arg in args)
        prefix = f"--{group}." if on_command_line else f"{group}.init_args."
        matches = _closest(name, _class_options(class_path))
        return (
            f"unknown option {prefix}{name}{'' if on_command_line else ' in the config'}: {class_path} has no "
            f"parameter '{name}'.{_did_you_mean([prefix + match for match in matches])} "
            f"`{prog} --{group}.help {class_path}` lists its options."
        )
    if found := _COMMAND_LINE_OPTION.match(message):
        name, options, where = found["name"], ["--" + key for key in _options(parser)], ""
    elif found := _CONFIG_OPTION.match(message):
        name, options, where = found["name"], _options(parser), " in the config"
    else:
        return None
    return f"unknown option {name}{where}.{_did_you_mean(_closest(name, options))} `{prog} --help` lists the options."


def _callable_problem(message: str, args: list[str], prog: str) -> str | None:
    """A class given to ``--model.optimizer`` or ``--model.lr_scheduler`` that is not one, lacks an argument it
    requires or has no such option, in one line with the closest valid names."""
    found = _CALLABLE.search(message)
    if found is None or found["key"] not in _CALLABLE_KINDS:
        return None
    group, key, reason = found["group"], found["key"], found["reason"]
    named = _GIVEN.search(message)
    given = found["class_path"] or (named and named["path"])
    if not given:
        return None
    on_command_line = any(arg.split("=")[0].startswith(f"--{group}.{key}") for arg in args)
    option = f"--{group}.{key}" if on_command_line else f"{group}.init_args.{key}"
    where = "" if on_command_line else " in the config"
    kind, package, base, example = _CALLABLE_KINDS[key]
    listed = f"`{prog} --{group}.{key}.help {given}` lists its options."
    if unknown := re.match(r"Option '(?P<name>[\w.]+)' is not accepted", reason):
        name = unknown["name"]
        matches = [f"{option}.{match}" for match in _closest(name, _class_options(given))]
        return (
            f"unknown option {option}.{name}{where}: {given} has no parameter '{name}'.{_did_you_mean(matches)} "
            + listed
        )
    if required := re.match(r"the following arguments are required: (?P<names>.+)", reason):
        names = ", ".join(f"{option}.{name.strip()}" for name in required["names"].split(","))
        return f"{option} {given}{where} needs {names}. {listed}"
    matches = _closest(given, _subclasses(package, base))
    return f"{option} {given}{where}: not {kind}.{_did_you_mean(matches) or f' For example {package}.{example}.'}"


def _subclasses(package: str, base: str) -> list[str]:
    """The classes of ``package`` that subclass ``base`` (both import paths), as import paths."""
    module, base_class = importlib.import_module(package), _import(base)
    return [
        f"{package}.{name}"
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, base_class) and value is not base_class
    ]


def _import(path: str) -> type:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _options(parser: LightningArgumentParser) -> list[str]:
    """The parser's option keys, nested ones included (``trainer.max_epochs``)."""
    try:
        return list(parser.get_defaults().keys())
    except (TypeError, ValueError, KeyError, argparse.ArgumentError):
        return []


def _class_options(class_path: str) -> list[str]:
    """The init_args keys of the class at ``class_path``."""
    module, _, name = class_path.rpartition(".")
    try:
        parser = LightningArgumentParser(exit_on_error=False)
        parser.add_class_arguments(getattr(importlib.import_module(module), name), fail_untyped=False)
    except (ImportError, AttributeError, ValueError, TypeError):
        return []
    return _options(parser)


def _closest(name: str, options: list[str]) -> list[str]:
    """The options closest to ``name``: up to three, as close as the closest (difflib's ratio within 0.05). Within
    a known group (``trainer.``) only the last parts are compared: the shared prefix would make anything close."""
    group = name.rpartition(".")[0]
    siblings = {option.rpartition(".")[2]: option for option in options if option.rpartition(".")[0] == group}
    candidates = siblings or {option: option for option in options}
    word = name.rpartition(".")[2] if siblings else name
    matches = difflib.get_close_matches(word, candidates, n=3)
    best = difflib.SequenceMatcher(None, word, matches[0]).ratio() if matches else 0
    return [candidates[match] for match in matches if difflib.SequenceMatcher(None, word, match).ratio() >= best - 0.05]


def _did_you_mean(options: list[str]) -> str:
    """' Did you mean A, B or C?' (nothing without options)."""
    if not options:
        return ""
    return f" Did you mean {' or '.join([', '.join(options[:-1]), options[-1]] if options[:-1] else options)}?"
