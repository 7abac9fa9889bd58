"""The device farm over TVM RPC: trackers, servers, discovery, emulated and SSH-bootstrapped devices.

Typed entry points (heavy modules are imported lazily):

- :func:`hwface.rpc.tracker.start_tracker`, :func:`hwface.rpc.server.start_server`
- :func:`hwface.rpc.devices.list_devices`, :func:`hwface.rpc.devices.connect`
- :func:`hwface.rpc.embedded.embedded_device` (private tracker + host server),
  :func:`hwface.rpc.embedded.device_for` (the device for a target)
- :func:`hwface.rpc.emulate.prepare_root`, :func:`hwface.rpc.emulate.emulated_device`
- :func:`hwface.rpc.ssh.bootstrap`, :func:`hwface.rpc.ssh.stop_bootstrapped`
- :func:`hwface.rpc.remote.call_with_deadline`, :func:`hwface.rpc.remote.device_of` (running an artifact
  there: :func:`hwface.measure.remote_run.run_remote`)
"""

from hwface.rpc.devices import DeviceStatus, connect, list_devices
from hwface.rpc.embedded import DeviceEndpoint, device_for, embedded_device

__all__ = ["DeviceEndpoint", "DeviceStatus", "connect", "device_for", "embedded_device", "list_devices"]
