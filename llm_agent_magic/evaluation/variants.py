"""Settings side by side: ``--variant NAME:--AgentConfig.x=y ...`` runs every question under each variant.

A variant is a name and a few ``--Class.trait=value`` settings of the agent's own configuration classes,
applied to each of its questions' sessions on top of the eval's configuration (as settings given on the
command line would be). Each (model, variant) is one column of the summary, with its own folders
``<out>/<model>--<variant>/<id>/``.
"""

from __future__ import annotations

import shlex

from traitlets import TraitError
from traitlets.config import Config, Configurable
from traitlets.config.loader import ArgumentError, KVArgParseConfigLoader

from ..config import AgentConfig, LLMConfig, SandboxConfig, ToolsConfig
from ..exceptions import UsageProblem

#: The classes a variant may set; where the data goes and which cassette is used stay the eval's.
CLASSES: dict[str, type[Configurable]] = {c.__name__: c for c in (AgentConfig, LLMConfig, SandboxConfig, ToolsConfig)}
#: Settings the eval itself decides (models come from --model, cassettes from --record/--replay).
RESERVED = ("LLMConfig.model", "LLMConfig.cassette_mode", "LLMConfig.cassette_path", "LLMConfig.host")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def variant_config(settings: list[str]) -> Config:
    """The configuration ``settings`` (``["--AgentConfig.x=y", ...]``) make; UsageProblem saying what is wrong."""
    for setting in settings:
        key = setting[2:].partition("=")[0]
        cls, _, trait = key.partition(".")
        if not setting.startswith("--") or "=" not in setting or not trait:
            raise UsageProblem(f"variant setting {setting!r} is not of the form --Class.trait=value")
        if cls not in CLASSES:
            raise UsageProblem(f"variant setting {setting!r}: a variant sets {', '.join(CLASSES)}, not {cls}")
        if key in RESERVED:
            raise UsageProblem(
                f"variant setting {setting!r}: {key} is the eval's own (use --model, --record, --replay or --host)"
            )
        if trait not in CLASSES[cls].class_trait_names(config=True):
            raise UsageProblem(f"variant setting {setting!r}: {cls} has no setting {trait!r} (`llm-agent config` lists them)")
    try:
        config = KVArgParseConfigLoader(argv=list(settings)).load_config()
        for configurable in CLASSES.values():
            configurable(config=config)  # a value of the wrong type is refused now, not in the middle of the eval
    except (ArgumentError, TraitError, ValueError) as exc:
        raise UsageProblem(f"variant settings {' '.join(settings)!r} cannot be used: {exc}") from None
    return config


def parse_variants(values: list[str]) -> dict[str, list[str]]:
    """``["fast:--AgentConfig.review_before_run=False", ...]`` -> ``{"fast": ["--AgentConfig..."]}``, checked."""
    variants: dict[str, list[str]] = {}
    for value in values:
        name, colon, rest = value.partition(":")
        name = name.strip()
        if not colon or not name or not set(name) <= _NAME_CHARS:
            raise UsageProblem(
                f"--variant {value!r}: write NAME:--Class.trait=value ... (a NAME of letters, digits, "
                f"'_', '.' or '-'; no settings after the colon is the eval's configuration as it is)"
            )
        if name in variants:
            raise UsageProblem(f"--variant {name!r} is given twice; name each variant once")
        try:
            settings = shlex.split(rest)
        except ValueError as exc:
            raise UsageProblem(f"--variant {value!r}: {exc}") from None
        variant_config(settings)
        variants[name] = settings
    if len(variants) == 1:
        raise UsageProblem("give at least two --variant values to compare, e.g. base: and another with settings")
    return variants
