"""The VM size catalog: Azure's figures, case-insensitive lookup and AKS's size checks."""

from __future__ import annotations

import pytest

from lks.arm import vmsizes
from lks.arm.errors import ARMError


@pytest.mark.parametrize(("name", "vcpus", "memory_gib", "temp_gib", "data_disks"), [
    pytest.param("Standard_B2s", 2, 4, 8, 4, id="B2s"),
    pytest.param("Standard_B2ms", 2, 8, 16, 4, id="B2ms"),
    pytest.param("Standard_B4ms", 4, 16, 32, 8, id="B4ms"),
    pytest.param("Standard_B2s_v2", 2, 8, 0, 4, id="B2s_v2"),
    pytest.param("Standard_DS2_v2", 2, 7, 14, 8, id="DS2_v2"),
    pytest.param("Standard_DS3_v2", 4, 14, 28, 16, id="DS3_v2"),
    pytest.param("Standard_D2s_v3", 2, 8, 16, 4, id="D2s_v3"),
    pytest.param("Standard_D4s_v3", 4, 16, 32, 8, id="D4s_v3"),
    pytest.param("Standard_D8s_v3", 8, 32, 64, 16, id="D8s_v3"),
    pytest.param("Standard_D4s_v4", 4, 16, 0, 8, id="D4s_v4"),
    pytest.param("Standard_D2_v5", 2, 8, 0, 4, id="D2_v5"),
    pytest.param("Standard_D4ds_v5", 4, 16, 150, 8, id="D4ds_v5"),
    pytest.param("Standard_D8as_v5", 8, 32, 0, 16, id="D8as_v5"),
    pytest.param("Standard_E4s_v3", 4, 32, 64, 8, id="E4s_v3"),
    pytest.param("Standard_E64s_v3", 64, 432, 864, 32, id="E64s_v3"),
    pytest.param("Standard_E8s_v5", 8, 64, 0, 16, id="E8s_v5"),
    pytest.param("Standard_F2s_v2", 2, 4, 16, 4, id="F2s_v2"),
    pytest.param("Standard_L8s_v3", 8, 64, 80, 16, id="L8s_v3"),
])
def test_figures_from_the_size_tables(name, vcpus, memory_gib, temp_gib, data_disks):
    size = vmsizes.lookup(name)
    assert (size.name, size.vcpus, size.memory_gib, size.temp_disk_gib, size.max_data_disks) == \
        (name, vcpus, memory_gib, temp_gib, data_disks)


@pytest.mark.parametrize(("name", "gpus", "gpu", "vcpus", "memory_gib"), [
    pytest.param("Standard_NC6s_v3", 1, "V100", 6, 112, id="NC6s_v3"),
    pytest.param("Standard_NC24s_v3", 4, "V100", 24, 448, id="NC24s_v3"),
    pytest.param("Standard_NC4as_T4_v3", 1, "T4", 4, 28, id="NC4as_T4_v3"),
    pytest.param("Standard_NC24ads_A100_v4", 1, "A100", 24, 220, id="NC24ads_A100_v4"),
    pytest.param("Standard_NC96ads_A100_v4", 4, "A100", 96, 880, id="NC96ads_A100_v4"),
])
def test_gpu_sizes(name, gpus, gpu, vcpus, memory_gib):
    size = vmsizes.lookup(name)
    assert (size.gpus, size.gpu, size.vcpus, size.memory_gib) == (gpus, gpu, vcpus, memory_gib)


# Capabilities the Resource SKUs API reports (MaxResourceVolumeMB, MaxDataDiskCount, PremiumIO,
# HyperVGenerations), as recorded in Azure/karpenter-provider-azure pkg/fake/zz_generated.sku.*.go.
@pytest.mark.parametrize(("name", "resource_volume_mb", "data_disks", "premium", "gen2"), [
    pytest.param("Standard_DS2_v2", 14336, 8, True, True, id="DS2_v2"),
    pytest.param("Standard_D2_v2", 102400, 8, False, False, id="D2_v2"),
    pytest.param("Standard_D2_v3", 51200, 4, False, False, id="D2_v3"),
    pytest.param("Standard_D2s_v3", 16384, 4, True, True, id="D2s_v3"),
    pytest.param("Standard_D4s_v3", 32768, 8, True, True, id="D4s_v3"),
    pytest.param("Standard_D64s_v3", 524288, 32, True, True, id="D64s_v3"),
    pytest.param("Standard_D2_v5", 0, 4, False, True, id="D2_v5"),
    pytest.param("Standard_F16s_v2", 131072, 32, True, True, id="F16s_v2"),
    pytest.param("Standard_B20ms", 163840, 32, True, True, id="B20ms"),
    pytest.param("Standard_NC6s_v3", 753664, 12, True, True, id="NC6s_v3"),
    pytest.param("Standard_NC16as_T4_v3", 360448, 32, True, True, id="NC16as_T4_v3"),
    pytest.param("Standard_NC24ads_A100_v4", 65536, 8, True, True, id="NC24ads_A100_v4"),
])
def test_agrees_with_the_resource_skus_api(name, resource_volume_mb, data_disks, premium, gen2):
    size = vmsizes.lookup(name)
    assert size.temp_disk_gib * 1024 == resource_volume_mb
    assert (size.max_data_disks, size.premium_io, size.gen2) == (data_disks, premium, gen2)


def test_lookup_is_case_insensitive_and_canonical():
    size = vmsizes.lookup("standard_ds2_V2")
    assert size.name == "Standard_DS2_v2"
    assert vmsizes.get("STANDARD_D4S_V3") is vmsizes.lookup("Standard_D4s_v3")
    assert vmsizes.get("Standard_D6s_v3") is None
    assert vmsizes.lookup(vmsizes.DEFAULT).name == "Standard_DS2_v2"


def test_catalog_is_consistent():
    sizes = vmsizes.all_sizes()
    assert len({s.name.lower() for s in sizes}) == len(sizes)
    assert all(s.name.startswith("Standard_") and s.vcpus > 0 and s.memory_gib > 0 for s in sizes)
    assert vmsizes.lookup("Standard_D16s_v3").memory_mib == 65536


def test_unknown_size_is_vm_size_not_supported():
    with pytest.raises(ARMError) as err:
        vmsizes.lookup("Standard_D6s_v3", location="westus2", subscription_id="79a7390d")
    assert err.value.code == "VMSizeNotSupported"
    assert err.value.message.startswith("Virtual Machine size: 'Standard_D6s_v3' is not supported for "
                                        "subscription 79a7390d in location 'westus2'. The available VM sizes are "
                                        "'standard_b12ms,standard_b16ls_v2,")
    assert ",standard_ds2_v2," in err.value.message


@pytest.mark.parametrize("name", ["Standard_DS1_v2", "Standard_B1ms", "Standard_B2ts_v2", "Standard_D1_v2"])
def test_system_pools_need_two_cores_and_four_gib(name):
    with pytest.raises(ARMError) as err:
        vmsizes.check_pool(name, mode="System", pool_name="nodepool1")
    assert (err.value.code, err.value.message) == (
        "SystemPoolSkuTooLow",
        "System node pool must use VM sku with more than 2 cores and 4GB memory. Nodepool name: nodepool1.")


@pytest.mark.parametrize("name", ["Standard_DS2_v2", "Standard_B2s", "Standard_F2s_v2", "Standard_B2ls_v2",
                                  "Standard_D2s_v3"])
def test_smallest_system_sizes(name):
    assert vmsizes.check_pool(name, mode="System").name == name


@pytest.mark.parametrize(("name", "allowed"), [
    pytest.param("Standard_B2ts_v2", False, id="1-GiB"),
    pytest.param("Standard_DS1_v2", False, id="1-vCPU"),
    pytest.param("Standard_B2ls_v2", True, id="2-vCPU-4-GiB"),
    pytest.param("Standard_NC6s_v3", True, id="gpu"),
])
def test_user_pools_need_two_cores_and_two_gib(name, allowed):
    if allowed:
        assert vmsizes.check_pool(name, mode="User").name == name
        return
    with pytest.raises(ARMError) as err:
        vmsizes.check_pool(name, mode="User")
    assert err.value.code == "VMSizeRestrictedByAKS"
    assert f"`{name}` does not have enough CPU/memory to run as an AKS node" in err.value.message
