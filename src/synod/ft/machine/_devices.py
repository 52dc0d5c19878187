"""The machine's devices: console, timer acknowledge, block device with
DMA through a bounce buffer, network in and out.

Bare-metal programs reach them through 32-bit registers at ``MMIO_BASE``
(aligned LW/SW only; anything else there is an access fault). User
programs reach the console and the network through system calls
(``_kernel``). Register map (offsets from ``MMIO_BASE``)::

    0x00 CONSOLE_TX        W   low byte -> console output
    0x04 CONSOLE_RX        R   next input byte, or 0xFFFFFFFF when none (pops it)
    0x08 CONSOLE_RX_COUNT  R   input bytes waiting
    0x0C TIMER_ACK         W   clears mip.MTIP
    0x10 IRQ_PENDING       R   device interrupt bits (1 console input, 2 block done, 4 packet in);
                           W   write 1s to clear; mip.MEIP is set while any bit is
    0x20 BLK_SECTOR        RW  first sector of the next request
    0x24 BLK_ADDR          RW  guest-physical address of its buffer
    0x28 BLK_COUNT         RW  sectors (1 .. BLOCK_REQUEST_SECTORS_MAX)
    0x2C BLK_CMD           W   1 read, 2 write
    0x30 BLK_STATUS        R   0 idle, 1 read in flight, 2 error (last command refused)
    0x34 BLK_SECTORS       R   disk size in sectors
    0x40 NET_TX_ADDR       RW  packet to send: address
    0x44 NET_TX_LEN        RW  and length in bytes
    0x48 NET_TX_CMD        W   1: send it
    0x50 NET_RX_LEN        R   length of the first waiting packet, or 0xFFFFFFFF when none
    0x54 NET_RX_ADDR       RW  where to receive it
    0x58 NET_RX_CMD        W   1: copy the first packet there and drop it from the queue

Disk reads and the paper's bounce buffers (VMware FT, Scales et al.
2010, section 3.5): a read command copies the sectors from the disk image
into a buffer the device owns at once, and into guest memory only when the
completion is delivered (``BlockReadComplete``, an input the caller
delivers at an instruction count of its choice, logged like any other).
The guest's view of memory therefore changes only at that count, on the
primary and the backup alike, even if the program touches the buffer
meanwhile. A write command is performed at once (an output event carries
its data); one read may be in flight at a time (a command while one is
refuses with status 2).
"""

from __future__ import annotations

from collections import deque

from synod.ft import constants as c
from synod.ft.machine._isa import MASK32
from synod.ft.machine._memory import Memory
from synod.ft.machine.records import (
    BlockReadComplete,
    BlockRequest,
    BlockWrite,
    ConsoleInput,
    ConsoleOutput,
    DeviceState,
    NetworkOutput,
    NetworkPacket,
    OutputEvent,
)

CONSOLE_TX, CONSOLE_RX, CONSOLE_RX_COUNT, TIMER_ACK, IRQ_PENDING = 0x00, 0x04, 0x08, 0x0C, 0x10
BLK_SECTOR, BLK_ADDR, BLK_COUNT, BLK_CMD, BLK_STATUS, BLK_SECTORS = 0x20, 0x24, 0x28, 0x2C, 0x30, 0x34
NET_TX_ADDR, NET_TX_LEN, NET_TX_CMD, NET_RX_LEN, NET_RX_ADDR, NET_RX_CMD = 0x40, 0x44, 0x48, 0x50, 0x54, 0x58
IRQ_CONSOLE, IRQ_BLOCK, IRQ_NET = 1, 2, 4
BLK_IDLE, BLK_BUSY, BLK_ERROR = 0, 1, 2
BLK_CMD_READ, BLK_CMD_WRITE = 1, 2


class Devices:
    """Device state, the held outputs, and the disk image (``disk``, a
    multiple of DISK_SECTOR_BYTES)."""

    def __init__(self, memory: Memory, disk: bytes | bytearray = b"") -> None:
        assert len(disk) % c.DISK_SECTOR_BYTES == 0
        assert len(disk) <= c.DISK_SIZE_BYTES_MAX
        self.memory = memory
        self.disk = bytearray(disk)
        self.outputs: list[OutputEvent] = []
        self.console_in: deque[int] = deque()
        self.console_eof = False
        self.console_overrun_bytes = 0
        self.irq_pending = 0
        self.blk_sector = self.blk_address = self.blk_count = 0
        self.blk_status = BLK_IDLE
        self.blk_next_request_id = 1
        self.blk_request: BlockRequest | None = None
        self.net_tx_address = self.net_tx_length = self.net_rx_address = 0
        self.net_rx: deque[bytes] = deque()
        self.net_rx_dropped = 0

    # --- inputs (between instructions) -------------------------------------------------------------

    def console_input(self, event: ConsoleInput) -> None:
        room = c.CONSOLE_INPUT_BYTES_MAX - len(self.console_in)
        self.console_in.extend(event.data[:room])
        self.console_overrun_bytes += max(0, len(event.data) - room)
        self.console_eof = self.console_eof or event.eof
        if event.data:
            self.irq_pending |= IRQ_CONSOLE

    def network_input(self, event: NetworkPacket) -> None:
        if len(self.net_rx) >= c.NET_RX_QUEUE_PACKETS_MAX:
            self.net_rx_dropped += 1
            return
        self.net_rx.append(event.data)
        self.irq_pending |= IRQ_NET

    def block_read_complete(self, event: BlockReadComplete) -> bool:
        """DMA the completion's data into guest memory; False when it does not
        match the request in flight (the caller's error)."""
        req = self.blk_request
        if req is None or req.request_id != event.request_id or len(event.data) != len(req.bounce):
            return False
        o = self.memory.offset(req.address, len(event.data))
        assert o is not None, "checked when the request was made"
        self.memory.write(o, event.data)
        self.blk_request = None
        self.blk_status = BLK_IDLE
        self.irq_pending |= IRQ_BLOCK
        return True

    # --- outputs -----------------------------------------------------------------------------------

    def emit(self, event: OutputEvent) -> None:
        self.outputs.append(event)

    # --- registers ---------------------------------------------------------------------------------

    def read(self, reg: int) -> int | None:
        """Register ``reg``'s value (may pop input); None when there is no such readable register."""
        if reg == CONSOLE_RX:
            return self.console_in.popleft() if self.console_in else MASK32
        values = {
            CONSOLE_RX_COUNT: len(self.console_in), IRQ_PENDING: self.irq_pending, BLK_SECTOR: self.blk_sector,
            BLK_ADDR: self.blk_address, BLK_COUNT: self.blk_count, BLK_STATUS: self.blk_status,
            BLK_SECTORS: len(self.disk) // c.DISK_SECTOR_BYTES, NET_TX_ADDR: self.net_tx_address,
            NET_TX_LEN: self.net_tx_length, NET_RX_LEN: len(self.net_rx[0]) if self.net_rx else MASK32,
            NET_RX_ADDR: self.net_rx_address,
        }
        return values.get(reg)

    def write(self, reg: int, value: int, instret: int) -> bool | None:
        """Write register ``reg`` by the instruction at retired count
        ``instret``. Returns True when the timer interrupt is acknowledged,
        False otherwise, None when there is no such writable register."""
        if reg == CONSOLE_TX:
            self.emit(ConsoleOutput(instret=instret + 1, data=bytes((value & 0xFF,))))
        elif reg == TIMER_ACK:
            return True
        elif reg == IRQ_PENDING:
            self.irq_pending &= ~value
        elif reg in (BLK_SECTOR, BLK_ADDR, BLK_COUNT):
            setattr(self, {BLK_SECTOR: "blk_sector", BLK_ADDR: "blk_address", BLK_COUNT: "blk_count"}[reg], value)
        elif reg == BLK_CMD:
            self._block_command(value, instret)
        elif reg == NET_TX_ADDR:
            self.net_tx_address = value
        elif reg == NET_TX_LEN:
            self.net_tx_length = value
        elif reg == NET_TX_CMD:
            if value == 1:
                self.send_packet(self.net_tx_address, self.net_tx_length, instret)
        elif reg == NET_RX_ADDR:
            self.net_rx_address = value
        elif reg == NET_RX_CMD:
            if value == 1 and self.net_rx:
                self.receive_packet(self.net_rx_address, MASK32)
        else:
            return None
        return False

    def send_packet(self, address: int, length: int, instret: int) -> int | None:
        """Send ``length`` bytes at guest ``address`` as one packet; the length
        sent, or None when the buffer is outside RAM or too long."""
        o = self.memory.offset(address, length)
        if o is None or length > c.NET_PACKET_BYTES_MAX:
            return None
        self.emit(NetworkOutput(instret=instret + 1, data=self.memory.read(o, length)))
        return length

    def receive_packet(self, address: int, length_max: int) -> int | None:
        """Copy the first waiting packet (cut to ``length_max``) to guest
        ``address`` and drop it; its copied length, or None when outside RAM."""
        data = self.net_rx[0][:length_max]
        o = self.memory.offset(address, len(data))
        if o is None:
            return None
        self.net_rx.popleft()
        self.memory.write(o, data)
        return len(data)

    def _block_command(self, command: int, instret: int) -> None:
        count, sector = self.blk_count, self.blk_sector
        length = count * c.DISK_SECTOR_BYTES
        o = self.memory.offset(self.blk_address, length)
        disk_ok = 0 < count <= c.BLOCK_REQUEST_SECTORS_MAX and (sector + count) * c.DISK_SECTOR_BYTES <= len(self.disk)
        if self.blk_request is not None or command not in (BLK_CMD_READ, BLK_CMD_WRITE) or o is None or not disk_ok:
            self.blk_status = BLK_ERROR
            return
        start = sector * c.DISK_SECTOR_BYTES
        if command == BLK_CMD_WRITE:
            data = self.memory.read(o, length)
            self.disk[start:start + length] = data
            self.emit(BlockWrite(instret=instret + 1, sector=sector, data=data))
            self.blk_status = BLK_IDLE
            self.irq_pending |= IRQ_BLOCK
            return
        self.blk_request = BlockRequest(request_id=self.blk_next_request_id, sector=sector, count=count,
                                        address=self.blk_address, bounce=bytes(self.disk[start:start + length]))
        self.blk_next_request_id += 1
        self.blk_status = BLK_BUSY

    # --- state ---------------------------------------------------------------------------------------

    def state(self) -> DeviceState:
        return DeviceState(
            console_in=bytes(self.console_in), console_eof=self.console_eof,
            console_overrun_bytes=self.console_overrun_bytes, irq_pending=self.irq_pending,
            blk_sector=self.blk_sector, blk_address=self.blk_address, blk_count=self.blk_count,
            blk_status=self.blk_status, blk_next_request_id=self.blk_next_request_id, blk_request=self.blk_request,
            net_tx_address=self.net_tx_address, net_tx_length=self.net_tx_length,
            net_rx_address=self.net_rx_address, net_rx=list(self.net_rx), net_rx_dropped=self.net_rx_dropped)

    def set_state(self, s: DeviceState) -> None:
        self.console_in = deque(s.console_in)
        self.console_eof, self.console_overrun_bytes, self.irq_pending = s.console_eof, s.console_overrun_bytes, s.irq_pending
        self.blk_sector, self.blk_address, self.blk_count = s.blk_sector, s.blk_address, s.blk_count
        self.blk_status, self.blk_next_request_id, self.blk_request = s.blk_status, s.blk_next_request_id, s.blk_request
        self.net_tx_address, self.net_tx_length, self.net_rx_address = s.net_tx_address, s.net_tx_length, s.net_rx_address
        self.net_rx = deque(s.net_rx)
        self.net_rx_dropped = s.net_rx_dropped
