"""The Ethos-U85 side of :mod:`.family`, in a module of its own so that U55/U65 runs never import it."""

from __future__ import annotations

from hwsim.schedule.ethos_u import blocks, blocks_u85
from hwsim.schedule.ethos_u import estimator as est
from hwsim.schedule.ethos_u import estimator_u85 as est85
from hwsim.schedule.ethos_u.family import U55Family


class U85Family(U55Family):
    """Ethos-U85 (Vela's EthosU85 architecture and performance classes)."""

    name = "u85"

    def block_config(self, q: blocks.BlockQuery) -> blocks.BlockConfig:
        return blocks_u85.find_block_config(self.arch, q)

    def op_cycles(self, q: est.PerfQuery) -> tuple[int, int]:
        return est85.op_cycles(self.arch, q)

    def element_access(self, q: est.PerfQuery) -> est.ElementAccess:
        return est85.element_access(self.arch, q)

    def to_bytes(self, q: est.PerfQuery, access: est.ElementAccess) -> est.ElementAccess:
        return est85.to_bytes(self.arch, q, access)

    def access_cycles(self, q: est.PerfQuery,
                      nbytes: est.ElementAccess) -> dict[str, tuple[est.Memory, int, int]]:
        return {name: (a.memory, a.bytes, a.cycles)
                for name, a in est85.access_cycles(self.arch, q, nbytes).items()}

    def mem_to_mem(self, dst: est.Memory, src: est.Memory, nbytes: int) -> int:
        return est85.mem_to_mem_cycles(self.arch, dst, src, nbytes)

    def min_read(self, memory: est.Memory, nbytes: float, weights: bool = False) -> int:
        return est85.min_read_cycles(self.arch, memory, nbytes, est85.WEIGHT if weights else est85.IFM)

    def min_depth(self, config: blocks.BlockConfig) -> int:
        return max(16, config.ofm_ublock[2]) if config.ofm_ublock else 16
