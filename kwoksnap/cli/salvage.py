"""``kwoksnap salvage``: keep what is readable of a damaged .kws file, in a new file every command reads."""

from __future__ import annotations

import click

from kwoksnap.cli.options import (
    example_epilog,
    finished_partly,
    first_few,
    not_stdout,
    one_line,
    print_json,
    summary_format,
)


@click.command(epilog=example_epilog(
    "kwoksnap inspect before.kws            # damaged: says where it broke",
    "kwoksnap salvage before.kws -o before-salvaged.kws",
    "kwoksnap restore before-salvaged.kws   # warns about what is missing",
))
@click.argument("path", type=click.Path(exists=True, dir_okay=False, readable=False))
@click.option("-o", "--output-file", "out", required=True, type=click.Path(dir_okay=False), callback=not_stdout,
              help="The file to write (.kws; never over an existing file).")
@summary_format
def salvage(path: str, out: str, output_format: str) -> int:
    """Copy every readable frame of a damaged snapshot or recording into a new, whole file.

    Every other command refuses a damaged file. Salvage reads past a damaged frame: through the index of a file
    that was closed cleanly (which also says what each lost frame held), or, without one (a writer that crashed,
    a damaged end), from the next block whose checksum is valid. The new file's index names each resource that
    lost records (or may have) as incomplete, so that `restore`, `diff` and `replay` warn about them. The damaged
    file is not changed.

    Exit code 0 when nothing was lost (the file was whole), 5 when records were lost (listed) or the file ends
    without its index (its writer was killed, or it was cut), 3 when nothing is readable (nothing is written).
    """
    from kwoksnap.store.salvage import salvage as salvage_file

    report = salvage_file(path, out)
    lost = report.lost_records
    if output_format == "json":
        print_json(report.to_dict())
    else:
        click.echo(one_line(f"wrote {report.records} records ({report.frames} frames) to {out}"))
        if report.copies:
            click.echo(f"left out: {report.copies} frame(s) that were second copies of one read before")
        if report.lost or report.missing:
            size = sum(s.length for s in report.lost)
            if report.whole:  # (an index found past the damage says every record was read)
                click.echo(f"skipped: {len(report.lost)} damaged stretch(es), {size} bytes, that held no record "
                           "(the file's index, found past the damage, lists none missing)")
            else:
                click.echo(f"lost: {len(report.lost)} damaged stretch(es), {size} bytes"
                           + (f", {lost} records" if lost is not None else ", records not known"
                              + ("" if report.counted else " (no index)")))
            for stretch in report.lost[:5]:
                held = (f"{stretch.lost} record(s) of {stretch.resource}" if stretch.resource is not None
                        else "content not known")
                click.echo(f"  byte {stretch.offset}, {stretch.length} bytes ({held}): {stretch.reason}")
            if len(report.lost) > 5:
                click.echo(f"  and {len(report.lost) - 5} more")
        if report.index_rebuilt:  # (black-box finding: salvage of a file cut inside its index said nothing of it)
            click.echo(f"{path}'s index is damaged or cut (its frames, all before it, are read): {out} has a new one")
        if report.cut:
            click.echo(f"{path} ends without its index (its writer was killed or crashed, or the file was cut): what "
                       "was written after that is not in it, and a resource written only there is not named")
        if report.incomplete and not report.whole:
            click.echo(f"incomplete in {out}: {first_few(sorted(report.incomplete))}")
        if report.described:
            click.echo(f"rebuilt the lost description (kind, scope) of: {first_few(report.described)}")
    if not report.whole:
        return finished_partly((len(report.lost), "damaged stretch(es) lost"),
                               (int(report.cut), "end of the file missing"),
                               (report.missing if not report.lost else 0, "record(s) missing"),
                               output_format=output_format)
    return 0
