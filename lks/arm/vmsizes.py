"""The Azure VM sizes a node pool may use, with the figures Azure publishes, and AKS's checks.

A pool's `vmSize` decides what its nodes look like (`lks.arm.nodeshape` turns a size into node
capacity, allocatable and labels), so the figures are Azure's own:

* vCPUs, memory (GiB), temp disk (GiB), max data disks and GPUs from the "Sizes in series"
  tables of MicrosoftDocs/azure-compute-docs `articles/virtual-machines/sizes/<category>/<series>.md`
  (bv1, bsv2, dv2, dsv2, dv3, dsv3, dsv4, dv5, dsv5, ddsv5, dasv5, ev3-esv3, esv5, fsv2, ncv3,
  ncast4v3, nca100v4, lsv3; read 2026).
* Premium storage and Hyper-V generation from the Resource SKUs API (`PremiumIO`,
  `HyperVGenerations`) as recorded in Azure/karpenter-provider-azure `pkg/fake/zz_generated.sku.*.go`,
  which agrees with the docs' feature tables except that Dsv2 also supports generation 2.
  The "s" in a size name marks premium storage (`Standard_D2s_v3`; `Standard_DS2_v2`).

AKS's checks, with its error codes:

* an unknown size is `VMSizeNotSupported` (azure-cli PR #30887 quotes the 2025 wording);
* a System pool needs at least 2 vCPUs and 4 GiB: `SystemPoolSkuTooLow` "System node pool must
  use VM sku with more than 2 cores and 4GB memory" (the message says "more than", but
  Standard_DS2_v2 with 2 cores was the default system size for years; Standard_DS1_v2 fails);
* any pool needs at least 2 vCPUs and 2 GiB (`quotas-skus-regions.md` "Restricted VM sizes"):
  `VMSizeRestrictedByAKS`, seen for Standard_B2ats_v2 (2 vCPUs, 1 GiB).

Names are matched case-insensitively, as Azure does; the canonical spelling is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from lks.arm.errors import ARMError

# The default before May 2025, when AKS started choosing one by capacity ("Smart VM defaults",
# quotas-skus-regions.md); still the CLI's default for VirtualMachines pools. lks has no
# capacity to weigh, so it keeps the fixed default.
DEFAULT = "Standard_DS2_v2"

SYSTEM_MIN_VCPUS, SYSTEM_MIN_MEMORY_GIB = 2, 4
POOL_MIN_VCPUS, POOL_MIN_MEMORY_GIB = 2, 2


@dataclass(frozen=True, slots=True)
class VMSize:
    name: str  # canonical spelling, e.g. "Standard_DS2_v2"
    vcpus: int
    memory_gib: float
    temp_disk_gib: int  # local temp (resource) disk; 0 when the size has none
    max_data_disks: int
    premium_io: bool  # can use Premium SSD (the OS disk tier AKS picks: Premium_LRS vs Standard_LRS)
    gen2: bool  # Hyper-V generation 2 supported; AKS then uses the gen2 node image
    gpus: int = 0
    gpu: str | None = None  # NVIDIA model, e.g. "V100"

    @property
    def memory_mib(self) -> int:
        return int(self.memory_gib * 1024)


def _series(rows: tuple[tuple, ...], *, premium_io: bool, gen2: bool, gpu: str | None = None) -> list[VMSize]:
    """rows: (name, vCPUs, memory GiB, temp disk GiB, max data disks[, GPUs])."""
    return [VMSize(f"Standard_{r[0]}", r[1], r[2], r[3], r[4], premium_io, gen2,
                   r[5] if len(r) > 5 else 0, gpu) for r in rows]


_SIZES: list[VMSize] = [
    # -- B-series (burstable) --------------------------------------------------------------------
    *_series((("B1ls", 1, 0.5, 4, 2), ("B1s", 1, 1, 4, 2), ("B1ms", 1, 2, 4, 2), ("B2s", 2, 4, 8, 4),
              ("B2ms", 2, 8, 16, 4), ("B4ms", 4, 16, 32, 8), ("B8ms", 8, 32, 64, 16), ("B12ms", 12, 48, 96, 16),
              ("B16ms", 16, 64, 128, 32), ("B20ms", 20, 80, 160, 32)), premium_io=True, gen2=True),
    *_series((("B2ts_v2", 2, 1, 0, 4), ("B2ls_v2", 2, 4, 0, 4), ("B2s_v2", 2, 8, 0, 4), ("B4ls_v2", 4, 8, 0, 8),
              ("B4s_v2", 4, 16, 0, 8), ("B8ls_v2", 8, 16, 0, 16), ("B8s_v2", 8, 32, 0, 16),
              ("B16ls_v2", 16, 32, 0, 32), ("B16s_v2", 16, 64, 0, 32), ("B32ls_v2", 32, 64, 0, 32),
              ("B32s_v2", 32, 128, 0, 32)), premium_io=True, gen2=True),
    # -- D-series (general purpose) -------------------------------------------------------------
    *_series((("D1_v2", 1, 3.5, 50, 4), ("D2_v2", 2, 7, 100, 8), ("D3_v2", 4, 14, 200, 16),
              ("D4_v2", 8, 28, 400, 32), ("D5_v2", 16, 56, 800, 64)), premium_io=False, gen2=False),
    *_series((("DS1_v2", 1, 3.5, 7, 4), ("DS2_v2", 2, 7, 14, 8), ("DS3_v2", 4, 14, 28, 16),
              ("DS4_v2", 8, 28, 56, 32), ("DS5_v2", 16, 56, 112, 64)), premium_io=True, gen2=True),
    *_series((("D2_v3", 2, 8, 50, 4), ("D4_v3", 4, 16, 100, 8), ("D8_v3", 8, 32, 200, 16),
              ("D16_v3", 16, 64, 400, 32), ("D32_v3", 32, 128, 800, 32), ("D48_v3", 48, 192, 1200, 32),
              ("D64_v3", 64, 256, 1600, 32)), premium_io=False, gen2=False),
    *_series((("D2s_v3", 2, 8, 16, 4), ("D4s_v3", 4, 16, 32, 8), ("D8s_v3", 8, 32, 64, 16),
              ("D16s_v3", 16, 64, 128, 32), ("D32s_v3", 32, 128, 256, 32), ("D48s_v3", 48, 192, 384, 32),
              ("D64s_v3", 64, 256, 512, 32)), premium_io=True, gen2=True),
    *_series((("D2s_v4", 2, 8, 0, 4), ("D4s_v4", 4, 16, 0, 8), ("D8s_v4", 8, 32, 0, 16),
              ("D16s_v4", 16, 64, 0, 32), ("D32s_v4", 32, 128, 0, 32), ("D48s_v4", 48, 192, 0, 32),
              ("D64s_v4", 64, 256, 0, 32)), premium_io=True, gen2=True),
    *_series((("D2_v5", 2, 8, 0, 4), ("D4_v5", 4, 16, 0, 8), ("D8_v5", 8, 32, 0, 16), ("D16_v5", 16, 64, 0, 32),
              ("D32_v5", 32, 128, 0, 32), ("D48_v5", 48, 192, 0, 32), ("D64_v5", 64, 256, 0, 32),
              ("D96_v5", 96, 384, 0, 32)), premium_io=False, gen2=True),
    *_series((("D2s_v5", 2, 8, 0, 4), ("D4s_v5", 4, 16, 0, 8), ("D8s_v5", 8, 32, 0, 16),
              ("D16s_v5", 16, 64, 0, 32), ("D32s_v5", 32, 128, 0, 32), ("D48s_v5", 48, 192, 0, 32),
              ("D64s_v5", 64, 256, 0, 32), ("D96s_v5", 96, 384, 0, 32)), premium_io=True, gen2=True),
    *_series((("D2ds_v5", 2, 8, 75, 4), ("D4ds_v5", 4, 16, 150, 8), ("D8ds_v5", 8, 32, 300, 16),
              ("D16ds_v5", 16, 64, 600, 32), ("D32ds_v5", 32, 128, 1200, 32), ("D48ds_v5", 48, 192, 1800, 32),
              ("D64ds_v5", 64, 256, 2400, 32), ("D96ds_v5", 96, 384, 3600, 32)), premium_io=True, gen2=True),
    *_series((("D2as_v5", 2, 8, 0, 4), ("D4as_v5", 4, 16, 0, 8), ("D8as_v5", 8, 32, 0, 16),
              ("D16as_v5", 16, 64, 0, 32), ("D32as_v5", 32, 128, 0, 32), ("D48as_v5", 48, 192, 0, 32),
              ("D64as_v5", 64, 256, 0, 32), ("D96as_v5", 96, 384, 0, 32)), premium_io=True, gen2=True),
    # -- E-series (memory optimized) ------------------------------------------------------------
    *_series((("E2_v3", 2, 16, 50, 4), ("E4_v3", 4, 32, 100, 8), ("E8_v3", 8, 64, 200, 16),
              ("E16_v3", 16, 128, 400, 32), ("E20_v3", 20, 160, 500, 32), ("E32_v3", 32, 256, 800, 32),
              ("E48_v3", 48, 384, 1200, 32), ("E64_v3", 64, 432, 1600, 32)), premium_io=False, gen2=False),
    *_series((("E2s_v3", 2, 16, 32, 4), ("E4s_v3", 4, 32, 64, 8), ("E8s_v3", 8, 64, 128, 16),
              ("E16s_v3", 16, 128, 256, 32), ("E20s_v3", 20, 160, 320, 32), ("E32s_v3", 32, 256, 512, 32),
              ("E48s_v3", 48, 384, 768, 32), ("E64s_v3", 64, 432, 864, 32)), premium_io=True, gen2=True),
    *_series((("E2s_v5", 2, 16, 0, 4), ("E4s_v5", 4, 32, 0, 8), ("E8s_v5", 8, 64, 0, 16),
              ("E16s_v5", 16, 128, 0, 32), ("E20s_v5", 20, 160, 0, 32), ("E32s_v5", 32, 256, 0, 32),
              ("E48s_v5", 48, 384, 0, 32), ("E64s_v5", 64, 512, 0, 32), ("E96s_v5", 96, 672, 0, 32),
              ("E104is_v5", 104, 672, 0, 64)), premium_io=True, gen2=True),
    # -- F-series (compute optimized) -----------------------------------------------------------
    *_series((("F2s_v2", 2, 4, 16, 4), ("F4s_v2", 4, 8, 32, 8), ("F8s_v2", 8, 16, 64, 16),
              ("F16s_v2", 16, 32, 128, 32), ("F32s_v2", 32, 64, 256, 32), ("F48s_v2", 48, 96, 384, 32),
              ("F64s_v2", 64, 128, 512, 32), ("F72s_v2", 72, 144, 576, 32)), premium_io=True, gen2=True),
    # -- NC-series (NVIDIA GPUs) ----------------------------------------------------------------
    *_series((("NC6s_v3", 6, 112, 736, 12, 1), ("NC12s_v3", 12, 224, 1474, 24, 2),
              ("NC24s_v3", 24, 448, 2948, 32, 4), ("NC24rs_v3", 24, 448, 2948, 32, 4)),
             premium_io=True, gen2=True, gpu="V100"),
    *_series((("NC4as_T4_v3", 4, 28, 176, 8, 1), ("NC8as_T4_v3", 8, 56, 352, 16, 1),
              ("NC16as_T4_v3", 16, 110, 352, 32, 1), ("NC64as_T4_v3", 64, 440, 2816, 32, 4)),
             premium_io=True, gen2=True, gpu="T4"),
    *_series((("NC24ads_A100_v4", 24, 220, 64, 8, 1), ("NC48ads_A100_v4", 48, 440, 128, 16, 2),
              ("NC96ads_A100_v4", 96, 880, 256, 32, 4)), premium_io=True, gen2=True, gpu="A100"),
    # -- L-series (storage optimized; each also has 1.92 TB local NVMe disks, 1 per 8 vCPUs) ----
    *_series((("L8s_v3", 8, 64, 80, 16), ("L16s_v3", 16, 128, 160, 32), ("L32s_v3", 32, 256, 320, 32),
              ("L48s_v3", 48, 384, 480, 32), ("L64s_v3", 64, 512, 640, 32), ("L80s_v3", 80, 640, 800, 32)),
             premium_io=True, gen2=True),
]
_BY_NAME: dict[str, VMSize] = {s.name.lower(): s for s in _SIZES}


def all_sizes() -> list[VMSize]:
    return list(_SIZES)


def get(name: str) -> VMSize | None:
    """The size called `name` (any case), or None."""
    return _BY_NAME.get(name.strip().lower()) if isinstance(name, str) else None


def lookup(name: str, *, location: str = "", subscription_id: str = "") -> VMSize:
    """The size called `name` (any case); AKS's `VMSizeNotSupported` when there is none."""
    size = get(name)
    if size is None:
        where = f" for subscription {subscription_id} in location '{location}'" if location else ""
        available = ",".join(sorted(_BY_NAME))  # AKS lists them lowercased, comma separated
        raise ARMError("VMSizeNotSupported", f"Virtual Machine size: '{name}' is not supported{where}. "
                       f"The available VM sizes are '{available}'")
    return size


def check_system_pool(size: VMSize, pool_name: str | None = None) -> None:
    """AKS's `SystemPoolSkuTooLow` unless `size` may host a System pool (>= 2 vCPUs, >= 4 GiB)."""
    if size.vcpus < SYSTEM_MIN_VCPUS or size.memory_gib < SYSTEM_MIN_MEMORY_GIB:
        suffix = f" Nodepool name: {pool_name}." if pool_name else ""
        raise ARMError("SystemPoolSkuTooLow",
                       f"System node pool must use VM sku with more than 2 cores and 4GB memory.{suffix}")


def check_restricted(size: VMSize) -> None:
    """AKS's `VMSizeRestrictedByAKS` unless `size` may host any node (>= 2 vCPUs, >= 2 GiB).
    The wording is AKS's older message for the same rule (Azure/azure-rest-api-specs#7153)."""
    if size.vcpus < POOL_MIN_VCPUS or size.memory_gib < POOL_MIN_MEMORY_GIB:
        raise ARMError("VMSizeRestrictedByAKS",
                       f"The VM SKU chosen for this cluster `{size.name}` does not have enough CPU/memory to run as "
                       "an AKS node. Please see https://aka.ms/aks/restricted-skus for more details.")


def check_pool(name: str, *, mode: str, pool_name: str | None = None, location: str = "",
               subscription_id: str = "") -> VMSize:
    """A pool's size after all of AKS's checks; System pools are checked for their minimum first,
    as AKS does (Standard_B2ats_v2 in a System pool fails with SystemPoolSkuTooLow)."""
    size = lookup(name, location=location, subscription_id=subscription_id)
    if mode.lower() == "system":
        check_system_pool(size, pool_name)
    check_restricted(size)
    return size
