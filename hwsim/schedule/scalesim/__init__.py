"""SCALE-Sim 3.0.0's memory behaviour, reproduced: ``memory_model: scalesim`` (``--memory-model scalesim``).

SCALE-Sim (``scalesim`` 3.0.0 on PyPI) turns each layer into demand matrices (one row per cycle, one column
per array edge port, an SRAM address or nothing) and plays them through three double-buffered SRAMs backed
by DRAM. hwsim rebuilds the same demands and the same buffer rules, but instead of stepping every cycle it
jumps from event to event (a prefetch, a drain, a full buffer), so its counts and cycles are SCALE-Sim's
while its run time is not. The modules, in the order a layer flows through them:

* :mod:`.layers`: a graph op as SCALE-Sim layers (one per depthwise channel or matmul batch);
* :mod:`.demand`: operand addresses, the folds of each dataflow, SRAM request counts, demand streams;
* :mod:`.buffers`: the ifmap/filter read buffers (CALC: estimated bandwidth; USER: prefetch windows) and
  the ofmap write buffer with its drains;
* :mod:`.layer_sim`: one layer's cycles, stalls, reads and writes, the figures of SCALE-Sim's reports;
* :mod:`.model`: the performance model registered as ``scalesim-3.0`` (layer plans for the simulator);
* :mod:`.reports`: COMPUTE_REPORT.csv, BANDWIDTH_REPORT.csv and DETAILED_ACCESS_REPORT.csv.
"""
