"""The ``hwsim energy`` subcommand: simulate, price, print the breakdown, power, EDP, TOPS/W and area."""

from __future__ import annotations

import argparse

from hwsim.energy import DEFAULT_ENERGY_MODEL


def run_energy(args: argparse.Namespace) -> int:
    """Simulate ``args.model`` on ``args.device``, price it, print the tables (and write the plot)."""
    from hwsim.energy.account import account, peak_efficiency
    from hwsim.energy.area import device_area
    from hwsim.energy.model import DevicePricer, EnergyModel
    from hwsim.devices.options import device_from_args
    from hwsim.schedule.result_files import check_output_path, write_results
    from hwsim.schedule.simulate import simulate

    output = check_output_path(args.output) if args.output else None
    if args.plot:
        from hwsim.guards import check_output_dir

        check_output_dir(args.plot, "--plot")
    _warn_technology(args)
    result = simulate(args.model, device_from_args(args))
    model = EnergyModel.for_device(
        result.device, args.energy_model, node_nm=args.node, voltage_v=args.voltage
    )
    breakdown = account(result, model, window_us=args.window_us)
    print(breakdown.table(rows=args.rows))
    pricer = DevicePricer(model, result.device)
    peak = peak_efficiency(pricer)
    print(
        f"\narray peak (int8, 100% utilisation, memories excluded): {peak.tops_per_w:.3f} TOPS/W at "
        f"{peak.power_mw:.1f} mW, {peak.energy_per_mac_pj:.4f} pJ per MAC"
    )
    print()
    print(device_area(pricer).table(sources=args.rows))
    if args.plot:
        from hwsim.plots.energy import plot_energy_breakdown

        print(f"wrote {plot_energy_breakdown(breakdown, args.plot)}")
    if output:
        from hwsim.energy.result_files import energy_results

        print(f"wrote {write_results(output, *energy_results(result, breakdown))}")
    return 0


def _warn_technology(args: argparse.Namespace) -> None:
    """A warning line for a --voltage or --node far outside the shipped devices' (:mod:`.devices.sanity`)."""
    import warnings

    from hwsim.devices.sanity import outside
    from hwsim.errors import HwsimWarning

    for option, key, value in (
        ("--voltage", "technology.voltage_v", args.voltage),
        ("--node", "technology.node_nm", args.node),
    ):
        why = outside(key, value) if value is not None else None
        if why:
            warnings.warn(HwsimWarning(f"{option}: {why}; its results are an extrapolation"), stacklevel=2)


def add_parser(sub) -> None:
    """Register ``hwsim energy`` on the CLI's subparsers."""
    p = sub.add_parser("energy", help="energy, power, energy-delay, TOPS/W and area of a model on a device")
    from hwsim.devices.options import add_device_options
    from hwsim.guards import positive_float

    p.add_argument("model", help="a .tflite, .onnx, layer .yaml or SCALE-Sim topology .csv")
    add_device_options(p)
    p.add_argument(
        "--energy-model",
        default=DEFAULT_ENERGY_MODEL,
        help="an energy table (see `hwsim list energy-models`) or a table .yaml "
        f"(default {DEFAULT_ENERGY_MODEL})",
    )
    p.add_argument(
        "--node", type=positive_float, default=None, help="technology node in nm (default: the device's)"
    )
    p.add_argument(
        "--voltage", type=positive_float, default=None, help="supply in volts (default: the device's)"
    )
    p.add_argument(
        "--window-us", type=positive_float, default=10.0, help="window of the peak power, in us (default 10)"
    )
    p.add_argument("--plot", default=None, help="folder to write the per-layer energy breakdown PNG to")
    p.add_argument("--rows", action="store_true", help="print every priced row with its source")
    p.add_argument(
        "--output",
        default=None,
        help="also write the results to this .json (totals and per-layer list) or .csv (a row per layer)",
    )
    p.set_defaults(func=run_energy)


def list_energy_models() -> None:
    """Print the shipped energy tables and scaling tables, one per line."""
    from hwsim.energy.table import energy_model_names, load_energy_table, load_scaling, scaling_names

    for name in energy_model_names():
        t = load_energy_table(name)
        print(f"{name:30s} {t.description} ({t.node_nm:g} nm, {t.voltage_v:g} V; scaling {t.scaling})")
    for name in scaling_names():
        print(f"{name:30s} {load_scaling(name).description} (scaling table)")
