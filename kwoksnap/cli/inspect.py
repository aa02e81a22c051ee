"""``kwoksnap inspect``: what a .kws file holds, and how much of a damaged one is readable."""

from __future__ import annotations

import os
from typing import Any

import click

from kwoksnap.cli.options import (
    camel_keys,
    converted_with,
    example_epilog,
    first_few,
    one_line,
    output_format,
    print_json,
)


@click.command(epilog=example_epilog("kwoksnap inspect before.kws", "kwoksnap inspect trace.kws -o json"))
@click.argument("path", type=click.Path(exists=True, dir_okay=False, readable=False))
@output_format
def inspect(path: str, output_format: str) -> int:
    """Header, counts per resource and namespace, time range, sizes and compression ratio.

    Every frame's checksum is verified; for a damaged file it reports how many frames and records are readable
    before the damage, where it broke, and what salvage would recover past it (exit 3).
    """
    import dataclasses

    from kwoksnap.audit import format_timestamp
    from kwoksnap.errors import FormatError
    from kwoksnap.store import KwsReader, scan
    from kwoksnap.store.reader import JOINED, offset_of
    from kwoksnap.store.salvage import SALVAGED

    try:
        reader = KwsReader(path)
    except FormatError as exc:
        report = scan(path)
        beyond = _beyond_damage(path) if report.header_ok else None  # (a damaged trailer, a duplicated frame...)
        if output_format == "json":
            print_json({"ok": False, "error": str(exc), "scan": camel_keys(dataclasses.asdict(report)),
                        **({"salvageable": beyond} if beyond is not None else {})})
        elif report.header_ok:  # a damaged .kws file: how much of it is readable (not so for another kind of file)
            click.echo(one_line(report.summary()))
            if beyond is not None:
                click.echo(_said(beyond, "walking on past the damage, as salvage does"))
        if (report.header_ok and report.stopped_at is not None and report.stopped_at != offset_of(exc.where or "")
                and JOINED not in str(exc)):  # (two files joined: said alike by both, once is enough)
            # The walk broke before the index was reached: the first damage is said first, the index's after it
            # (re-test findings: the summary and the error named two different bytes for one break).
            raise FormatError(f"damaged at {report.place}: {report.reason}; its index cannot be read "
                              f"where its trailer points either ({str(exc).removeprefix(f'{path}: ')})",
                              path=path, salvageable=True) from None
        raise
    with reader:
        report = reader.scan()  # verifies every frame's checksum: an intact index says nothing about the frames
        if not report.ok:
            beyond = _beyond_damage(path)
            if output_format == "json":
                print_json({"ok": False, "header": _shown(reader.header),
                            "scan": camel_keys(dataclasses.asdict(report)),
                            **({"salvageable": beyond} if beyond is not None else {})})
            else:
                click.echo(one_line(report.summary()))
                if beyond is not None:
                    click.echo(_said(beyond, "every frame, read on its own through the index"))
            if not report.records:  # (re-test finding: salvage was suggested of a file it finds nothing in)
                raise FormatError(f"damaged: {report.reason}; no record of it is readable", path=path)
            raise FormatError(f"damaged: {report.reason}; the readable part is listed above", path=path,
                              salvageable=True)
        try:
            info = _contents(reader, path)
        except FormatError as exc:  # a frame whose checksum holds, but whose records do not (the scan builds only
            # the first of each frame): black-box finding, inspect printed nothing but the error
            beyond = _beyond_damage(path)
            if output_format == "json":
                print_json({"ok": False, "header": _shown(reader.header), "error": str(exc), "salvageable": beyond})
            elif beyond is not None:
                click.echo(_said(beyond, "every frame, read on its own through the index"))
            raise FormatError(f"{str(exc).removeprefix(f'{path}: ')}; the readable part is listed above", path=path,
                              salvageable=True) from None
    if output_format == "json":
        print_json(info)
        return 0
    h = info["header"]
    click.echo(one_line(f"{path}: kwoksnap {h.get('contentType')} (format {info['formatVersion']}, written by "
                        f"kwoksnap {h.get('kwoksnapVersion')} at {h.get('createdAt')})"))
    src = h.get("source") or {}
    inputs = (h.get("meta") or {}).get("inputs")
    if src.get("server"):
        click.echo(f"source: {src['server']} ({src.get('serverVersion', '?')})")
    elif src.get("kind") == "audit-log" and isinstance(inputs, list):
        click.echo(one_line("source: audit log " + ", ".join(map(str, inputs))))
        filters = (h.get("meta") or {}).get("filters")
        if isinstance(filters, dict) and (given := converted_with(filters)):  # (black-box finding: only -o json)
            click.echo(f"converted with {given} (what those left out is not in it)")
    elif src.get("kind") == "kwokctl-yaml":
        click.echo(f"source: kwokctl YAML {src.get('path', '?')}")
    if (h.get("meta") or {}).get("salvagedFrom"):
        click.echo(f"salvaged from the damaged {h['meta']['salvagedFrom']} (`kwoksnap salvage`)")
    if info.get("timeRange"):
        first, last = info["timeRange"]
        click.echo(f"time range: {format_timestamp(first)} to {format_timestamp(last)} ({(last - first) / 1e9:.1f} s)")
    objects = sum(entry["objects"] for entry in info["resources"].values())
    click.echo(f"records: {info['records']}" + (f" ({objects} objects)" if objects != info["records"] else "")
               + f", {info['fileBytes']:,} bytes on disk, {info['rawBytes']:,} bytes decoded, compression "
               f"{info['compressionRatio']:.1f}x")
    width = max([55, *(len(res) for res in info["resources"])])  # long custom resource names stay in line
    for res, entry in info["resources"].items():
        ns: dict[str, int] = entry.get("namespaces") or {}
        top = ", ".join(f"{k or '(cluster)'}={v}" for k, v in sorted(ns.items(), key=lambda kv: -kv[1])[:4])
        if len(ns) > 4:
            top += f", and {len(ns) - 4} more namespaces (-o json lists them)"
        click.echo(f"  {res or '(none)':<{width}} {entry['objects']:>8}  {top}")
    if info["incomplete"]:
        names = list(info["incomplete"])
        reason = info["incomplete"][names[0]]
        why = reason if reason.startswith(SALVAGED) else f"its list failed when saved: {reason}"
        click.echo(f"not whole: {len(names)} resource(s): {first_few(names)} ({names[0]}: {why}"
                   + ("; -o json gives each reason)" if len(names) > 1 else ")"))
    if info.get("events"):
        click.echo("events by verb and resource:")
        for kind, n in info["events"].items():
            click.echo(f"  {kind:<{width}} {n:>8}")
    return 0


def _shown(header: dict[str, Any]) -> dict[str, Any]:
    """The header as shown: a ``user:password@`` in the server's URL left out (snapshots saved before kwoksnap
    stopped storing it may hold one)."""
    source = header.get("source")
    if not isinstance(source, dict) or not isinstance(server := source.get("server"), str) or "@" not in server:
        return header
    from kwoksnap.kube.config import without_password

    shown = without_password(server)
    return {**header, "source": {**source, "server": shown if "@" not in shown else "(not shown)"}}


def _beyond_damage(path: str) -> dict[str, Any] | None:
    """What salvage would keep and lose of a damaged file, found as salvage finds it (it writes nothing): every frame
    read on its own through an intact index, or, without one, the walk going on past each damaged stretch
    (black-box findings: the walk in file order stops at the first damage, "140 records readable" of a file
    salvage recovered 352 of). ``lostRecords`` is None when no readable index says what the stretches held."""
    from kwoksnap.errors import FormatError, InputError
    from kwoksnap.store.salvage import salvage

    try:
        kept = salvage(path, None)
    except FormatError:  # no frame reads
        return {"records": 0, "damagedStretches": None, "lostRecords": None}
    except (InputError, OSError):  # (a read error: the damage is still reported, without this count)
        return None
    # (Not the description records salvage makes for a snapshot resource whose own was lost: black-box finding,
    # 385 readable and 114 lost of a 498-record file.)
    return {"records": kept.records - len(kept.described), "damagedStretches": len(kept.lost),
            "lostRecords": kept.lost_records}


def _said(beyond: dict[str, Any], how: str) -> str:
    stretches = "" if beyond["damagedStretches"] is None else f", {beyond['damagedStretches']} damaged stretch(es)"
    lost = beyond["lostRecords"]
    lost_said = " (records lost: not known without a readable index)" if lost is None else \
        f" ({lost} records lost)" if lost else ""
    return (f"{how}: {beyond['records']} records readable{stretches}{lost_said} (`kwoksnap salvage` copies the "
            "readable ones)")


def _contents(reader: Any, path: str) -> dict[str, Any]:
    """What a file whose frames all passed the scan holds: per resource, sizes, time range; a recording's events."""
    resources: dict[str, dict[str, Any]] = {}
    raw = 0
    for res in reader.resources():
        frames = reader.frames(res)
        raw += sum(int(f.get("rawLength", 0)) for f in frames)
        namespaces = dict(reader.namespaces(res))
        # A snapshot opens each resource with one record describing it (kind, scope; docs/format.md), counted
        # under no namespace in the index: not an object.
        first = next(iter(reader.records(res)), None)
        described = first is not None and first.get("type") == "resource"
        if described and namespaces.get(""):
            namespaces[""] -= 1
        count = reader.count(res)
        resources[res] = {"records": count, "objects": count - described,
                          "namespaces": {k: v for k, v in namespaces.items() if v}, "frames": len(frames)}
    size = os.path.getsize(path)
    tr = reader.time_range()
    info: dict[str, Any] = {"header": _shown(reader.header), "formatVersion": reader.format_version,
                            "records": reader.count(), "fileBytes": size, "rawBytes": raw,
                            "compressionRatio": raw / size if size else 0.0, "timeRange": list(tr) if tr else None,
                            "resources": resources, "incomplete": reader.incomplete()}
    if reader.content_type == "recording":  # one time-ordered stream: what is in it, by resource and verb
        from collections import Counter

        kinds: Counter[str] = Counter()
        for rec in reader.records():
            ev = rec.get("event") if rec.get("type") == "event" else None
            if isinstance(ev, dict):
                name = str(ev.get("resource") or "?")  # as --resources spells it: resource[.group][/subresource]
                name += f".{ev['group']}" if ev.get("group") else ""  # (f-strings: any type of a damaged file)
                name += f"/{ev['subresource']}" if ev.get("subresource") else ""
                kinds[f"{ev.get('verb', '?')} {name}"] += 1
        info["events"] = dict(kinds.most_common())
    return info
