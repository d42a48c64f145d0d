"""The ``sipgw-lab`` command line.

Exit status (a contract scripts rely on): 0 success; 1 a firmware verdict other than ``supported`` or
``newer_than_approved`` in the check commands; 2 bad input (arguments, files, data).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from device_profiles.catalogue import default_catalogue
from device_profiles.verdict import FirmwareVerdict, Verdict, check_firmware, check_user_agent
from device_profiles.yamlio import DataFileError

EXIT_OK = 0
EXIT_VERDICT = 1
EXIT_BAD_INPUT = 2

_VERDICT_STYLE = {
    Verdict.SUPPORTED: "green",
    Verdict.NEWER_THAN_APPROVED: "cyan",
    Verdict.BELOW_MINIMUM: "red",
    Verdict.WRONG_FAMILY: "red",
    Verdict.UNKNOWN_MODEL: "yellow",
    Verdict.UNPARSEABLE: "yellow",
}


class CliError(Exception):
    """Bad input on the command line: printed as ``error: ...`` with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: usage + exit 2
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _console(stream=None) -> Console:
    stream = stream or sys.stdout
    # A terminal gets its own width; a pipe or file gets wide rows so names are never folded.
    width = None if getattr(stream, "isatty", lambda: False)() else 240
    return Console(file=stream, highlight=False, soft_wrap=False, width=width)


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# --- catalogue -------------------------------------------------------------------------------------------

def cmd_catalogue(args: argparse.Namespace) -> int:
    cat = default_catalogue()
    if args.vendor and cat.vendor_name(args.vendor) is None:
        raise CliError(f"unknown vendor {args.vendor!r}; known vendors: {', '.join(cat.vendors)}")
    models = cat.models(args.vendor)
    if args.json:
        _print_json([m.as_dict() for m in models])
        return EXIT_OK
    table = Table(title=f"SIP Gateway device catalogue ({len(models)} models)")
    for col in ("Vendor", "Model", "Kind", "Minimum", "Approved", "E911", "Ports"):
        table.add_column(col)
    for m in models:
        e = m.entry
        ports = f"{e.ports_usable}/{e.ports_total}" if e.ports_total else ""
        table.add_row(m.vendor, m.model, m.kind.replace("_", " "), e.min_firmware or "-",
                      e.approved_firmware or "-", "yes" if e.e911 else "", ports)
    _console().print(table)
    return EXIT_OK


# --- check-firmware / check-ua ----------------------------------------------------------------------------

def _report_verdict(verdict: FirmwareVerdict, as_json: bool) -> int:
    if as_json:
        _print_json(verdict.as_dict())
    else:
        style = _VERDICT_STYLE[verdict.verdict]
        who = " ".join(x for x in (verdict.vendor, verdict.model) if x) or "device"
        _console().print(f"[{style}]{verdict.verdict.value}[/{style}]  {who}  {verdict.found or ''}".rstrip())
        _console().print(f"  {verdict.reason}")
    return EXIT_OK if verdict.acceptable else EXIT_VERDICT


def cmd_check_firmware(args: argparse.Namespace) -> int:
    if not args.model.strip():
        raise CliError("MODEL is empty")
    return _report_verdict(check_firmware(args.model, args.version, vendor=args.vendor), args.json)


def cmd_check_ua(args: argparse.Namespace) -> int:
    if not args.user_agent.strip():
        raise CliError("the User-Agent string is empty")
    return _report_verdict(check_user_agent(args.user_agent, source=args.source), args.json)


# --- inventory ----------------------------------------------------------------------------------------------

def _load_inventory(path: str):
    from harness.inventory import load_inventory

    return load_inventory(path)


def verdict_table(inventory, title: str) -> Table:
    table = Table(title=title)
    for col in ("Device", "Vendor", "Model", "Firmware", "Verdict", "Lines", "Reason"):
        table.add_column(col, overflow="fold")
    for d in inventory.devices:
        style = _VERDICT_STYLE[d.verdict.verdict]
        table.add_row(d.id, d.vendor, d.model, d.firmware or "-",
                      f"[{style}]{d.verdict.verdict.value}[/{style}]", str(len(d.lines)), d.verdict.reason)
        for line in d.lines:
            if line.handset_verdict is not None:
                hv = line.handset_verdict
                hs = _VERDICT_STYLE[hv.verdict]
                table.add_row(f"  {line.id}", "", f"handset {line.handset_model}", line.handset_firmware or "-",
                              f"[{hs}]{hv.verdict.value}[/{hs}]", "", hv.reason)
    return table


def cmd_inventory_validate(args: argparse.Namespace) -> int:
    inv = _load_inventory(args.file)
    if args.json:
        _print_json({
            "inventory": inv.path,
            "digest": inv.digest,
            "devices": [
                {"id": d.id, "driver": d.driver, "lines": [line.number for line in d.lines], **d.verdict.as_dict()}
                for d in inv.devices
            ],
        })
        return EXIT_OK
    con = _console()
    con.print(verdict_table(inv, f"{inv.path}: {len(inv.devices)} devices"))
    blocked = [d for d in inv.devices if not d.verdict.acceptable]
    con.print(f"inventory is valid: {len(inv.devices)} devices, "
              f"{sum(len(d.lines) for d in inv.devices)} lines; "
              f"{len(blocked)} device(s) will be reported as blocked by their firmware verdict")
    return EXIT_OK


# --- run: harness/cli_run.py ------------------------------------------------------------------------------


# --- parser ---------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sipgw-lab", description="SIP Gateway device compatibility lab")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("catalogue", help="list the device catalogue (the vendor table)")
    p.add_argument("--vendor", help="only this vendor's models")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_catalogue)

    p = sub.add_parser("check-firmware", help="the firmware verdict for a model and version")
    p.add_argument("model", metavar="MODEL", help="model name as people write it, e.g. 'VVX 450' or vvx450")
    p.add_argument("version", metavar="VERSION", help="firmware version as the device reports it")
    p.add_argument("--vendor", help="vendor name, when the model name alone is ambiguous")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check_firmware)

    p = sub.add_parser("check-ua", help="identify a device from its User-Agent and give its firmware verdict")
    p.add_argument("user_agent", metavar="USER-AGENT")
    p.add_argument("--source", choices=("sip", "http"), default="sip",
                   help="where the string came from: a SIP User-Agent/Server header or an HTTP User-Agent")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check_ua)

    inv = sub.add_parser("inventory", help="lab inventory commands")
    inv_sub = inv.add_subparsers(dest="inventory_command", required=True, parser_class=_Parser)
    p = inv_sub.add_parser("validate", help="check an inventory and print each device's firmware verdict")
    p.add_argument("file", nargs="?", default="lab_inventory.yaml", metavar="FILE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_inventory_validate)

    from harness.cli_run import add_parser as add_run_parser

    add_run_parser(sub)

    from harness.cli_report import add_parser as add_report_parser

    add_report_parser(sub)

    from harness.cli_gateway import add_parser as add_gateway_parser

    add_gateway_parser(sub)

    from harness.cli_certify import add_parser as add_certify_parser

    add_certify_parser(sub)  # certify, verify, history
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"sipgw-lab: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except DataFileError as exc:
        print(f"sipgw-lab: error: {len(exc.problems)} problem(s) found; nothing was written", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
