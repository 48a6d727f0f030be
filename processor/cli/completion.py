"""`processor completion bash|zsh`: a shell completion script for the commands and their options, written
from the parser itself so it never falls behind it. Install: `processor completion bash >
/etc/bash_completion.d/processor` (or `source <(processor completion bash)` in ~/.bashrc); zsh: `source
<(processor completion zsh)` in ~/.zshrc (it runs the bash function through zsh's bashcompinit).

Imports argparse only (and the command line's parser, when asked for the script).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

SHELLS = ("bash", "zsh")


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(
        flag
        for action in parser._actions  # argparse has no public accessor for a parser's actions
        if action.help != argparse.SUPPRESS
        for flag in action.option_strings
    )


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def bash_script(parser: argparse.ArgumentParser) -> str:
    prog = parser.prog
    commands = _subcommands(parser)
    func = "_" + prog.replace("-", "_")
    cases = "\n".join(
        f'        {name}) words="{" ".join(_options(sub) + (list(SHELLS) if name == "completion" else []))}" ;;'
        for name, sub in commands.items()
    )
    top = " ".join(_options(parser) + list(commands))
    return f"""# {prog} completion for bash (and zsh through bashcompinit); made by `{prog} completion`.
{func}() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" command="" words i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case " {" ".join(commands)} " in
            *" ${{COMP_WORDS[i]}} "*) command=${{COMP_WORDS[i]}}; break ;;
        esac
    done
    case "$command" in
{cases}
        *) words="{top}" ;;
    esac
    if [[ -n $command && $cur != -* && $command != completion ]]; then
        COMPREPLY=()  # an argument: file names (complete -o default)
        return
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F {func} {prog}
"""


def zsh_script(parser: argparse.ArgumentParser) -> str:
    return f"#compdef {parser.prog}\nautoload -U +X bashcompinit && bashcompinit\n{bash_script(parser)}"


def cmd_completion(args: argparse.Namespace) -> int:
    from processor.cli import build_parser

    parser = build_parser()
    sys.stdout.write(bash_script(parser) if args.shell == "bash" else zsh_script(parser))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("completion", help="print a shell completion script (bash or zsh)")
    p.add_argument("shell", choices=SHELLS, help="the shell the script is for")
    p.set_defaults(func=cmd_completion)
