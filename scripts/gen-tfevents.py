#!/usr/bin/env python3
"""Write the TensorBoard event-file fixtures in test/fixtures/tfevents/ with Python's protobuf
runtime and TensorFlow's own schema, independently of spikeprobe's reader.

Needs: protoc and the Python protobuf runtime (Debian: apt-get install protobuf-compiler
python3-protobuf), and the schema files of tensorflow/tensorboard's tensorboard/compat/proto/
(event.proto, summary.proto, histogram.proto, tensor.proto, tensor_shape.proto,
resource_handle.proto, types.proto; Apache-2.0, not kept in this repository) under
PROTO_ROOT/tensorboard/compat/proto/.

    python3 scripts/gen-tfevents.py PROTO_ROOT [OUT_DIR]   # OUT_DIR default test/fixtures/tfevents

Framing (uint64 length, masked CRC-32C of it, data, masked CRC-32C of data) is written here with
a bitwise CRC-32C, not spikeprobe's table-driven one.

What is written (every value also listed in OUT_DIR/expected.json as the float32 the file holds):
  logs/{relu,prelu}/{s1,s2}/  PyTorch SummaryWriter layout, simple_value scalars, one point per
      epoch (step = epoch, 30 epochs): 'L_center/train', 'L_center/valid', 'loss/ce', 'lr';
      plus file_version, graph_def, histogram, image, session_log and log_message records;
      relu/s1 also has the subfolder PyTorch's add_hparams writes (hparams plugin, 'hparam/L_center').
      center(e) = scale * 0.9**e, times 1.3 at epochs 10, 11, 20, 21 for relu only (valid never);
      lr 0.1, 0.01 from epoch 10, 0.001 from epoch 20; scale 2.0 (s1), 2.2 (s2).
  tf2/{train,validation}/  Keras/TF2 layout, tensor-form scalars with plugin 'scalars' metadata
      on each tag's first value only: 'epoch_center_loss' (train: float_val, validation:
      tensor_content), 'epoch_learning_rate' (double_val); plus image and histogram tensors
      of other plugins and a tensor without any plugin. Same formulas as relu s1.
  steps/  per-step logging: 20 steps per epoch, 12 epochs; 'train/center_loss' every step:
      2 * 0.95**(step/20), times 1.4 for the first 4 steps of epoch 8; 'lr' every step (0.1,
      0.01 from epoch 8); 'epoch' every step; 'val/center_loss' once per epoch at its last step:
      2.2 * 0.9**e.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

proto_root = sys.argv[1]
out_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'tfevents')

gen = tempfile.mkdtemp()
protos = ['event', 'summary', 'histogram', 'tensor', 'tensor_shape', 'resource_handle', 'types']
subprocess.check_call(['protoc', f'--proto_path={proto_root}', f'--python_out={gen}'] +
                      [f'tensorboard/compat/proto/{p}.proto' for p in protos])
sys.path.insert(0, gen)
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2  # noqa: E402


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    head = struct.pack('<Q', len(data))
    return head + struct.pack('<I', masked(head)) + data + struct.pack('<I', masked(data))


def f32(x: float) -> float:
    return struct.unpack('<f', struct.pack('<f', x))[0]


expected = {}
WALL0 = 1.7e9


class Writer:
    def __init__(self, run: str, name: str):
        self.run = run
        self.path = os.path.join(out_dir, run, name)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.f = open(self.path, 'wb')
        self.expected = expected.setdefault(run, {})
        ev = event_pb2.Event(wall_time=WALL0, file_version='brain.Event:2')
        self.write(ev)

    def write(self, ev):
        self.f.write(frame(ev.SerializeToString()))

    def note(self, tag, step, value):
        self.expected.setdefault(tag, []).append([step, value])

    def scalar(self, tag, step, value):
        ev = event_pb2.Event(wall_time=WALL0 + step, step=step)
        ev.summary.value.add(tag=tag, simple_value=value)
        self.write(ev)
        self.note(tag, step, f32(value))

    def close(self):
        self.f.close()


def extras(w: Writer, step: int):
    ev = event_pb2.Event(wall_time=WALL0 + step, step=step, graph_def=b'\x0a\x04node' * 50)
    w.write(ev)
    ev = event_pb2.Event(wall_time=WALL0 + step, step=step)
    v = ev.summary.value.add(tag='features/hist')
    v.histo.min, v.histo.max, v.histo.num = -1.0, 1.0, 3.0
    v.histo.bucket_limit.extend([0.0, 1.0])
    v.histo.bucket.extend([1.0, 2.0])
    img = ev.summary.value.add(tag='samples/image')
    img.image.height, img.image.width, img.image.colorspace = 2, 2, 1
    img.image.encoded_image_string = b'\x89PNG fake' * 10
    w.write(ev)
    ev = event_pb2.Event(wall_time=WALL0 + step, step=step)
    ev.session_log.status = event_pb2.SessionLog.START
    w.write(ev)
    ev = event_pb2.Event(wall_time=WALL0 + step, step=step)
    ev.log_message.level = event_pb2.LogMessage.INFO
    ev.log_message.message = 'deprecated field'
    w.write(ev)


def lr_at(e):
    return 0.1 if e < 10 else 0.01 if e < 20 else 0.001


for variant in ['relu', 'prelu']:
    for seed, scale in [('s1', 2.0), ('s2', 2.2)]:
        w = Writer(f'logs/{variant}/{seed}', 'events.out.tfevents.1700000000.host.4242.0')
        for e in range(30):
            jump = 1.3 if variant == 'relu' and e in (10, 11, 20, 21) else 1.0
            w.scalar('L_center/train', e, scale * 0.9 ** e * jump)
            w.scalar('L_center/valid', e, 1.1 * scale * 0.9 ** e)
            w.scalar('loss/ce', e, 1.5 * 0.95 ** e)
            w.scalar('lr', e, lr_at(e))
            if e % 10 == 0:
                extras(w, e)
        w.close()
        if variant == 'relu' and seed == 's1':
            # What PyTorch's add_hparams writes: a timestamp-named subfolder with hparams-plugin
            # summaries and the final metrics as 'hparam/<name>' scalars at step 0.
            h = Writer(f'logs/{variant}/{seed}/1700000100.5', 'events.out.tfevents.1700000100.host.4242.1')
            ev = event_pb2.Event(wall_time=WALL0, step=0)
            v = ev.summary.value.add(tag='_hparams_/experiment')
            v.metadata.plugin_data.plugin_name = 'hparams'
            v.metadata.plugin_data.content = b'\x12\x00'
            h.write(ev)
            h.scalar('hparam/L_center', 0, scale * 0.9 ** 29)
            h.close()


def tensor_value(summary, tag, step, value, kind, first):
    v = summary.value.add(tag=tag)
    if first:
        v.metadata.plugin_data.plugin_name = 'scalars'
    if kind == 'float_val':
        v.tensor.dtype = types_pb2.DT_FLOAT
        v.tensor.float_val.append(value)
        return f32(value)
    if kind == 'double_val':
        v.tensor.dtype = types_pb2.DT_DOUBLE
        v.tensor.double_val.append(value)
        return value
    v.tensor.dtype = types_pb2.DT_FLOAT
    v.tensor.tensor_content = struct.pack('<f', value)
    return f32(value)


for split, kind in [('train', 'float_val'), ('validation', 'tensor_content')]:
    w = Writer(f'tf2/{split}', 'events.out.tfevents.1700000001.host.77.0.v2')
    for e in range(30):
        ev = event_pb2.Event(wall_time=WALL0 + e, step=e)
        if split == 'train':
            c = 2.0 * 0.9 ** e * (1.3 if e in (10, 11, 20, 21) else 1.0)
        else:
            c = 2.2 * 0.9 ** e
        w.note('epoch_center_loss', e, tensor_value(ev.summary, 'epoch_center_loss', e, c, kind, e == 0))
        w.note('epoch_learning_rate', e, tensor_value(ev.summary, 'epoch_learning_rate', e, lr_at(e), 'double_val', e == 0))
        w.write(ev)
        if e % 10 == 0:
            ev = event_pb2.Event(wall_time=WALL0 + e, step=e)
            im = ev.summary.value.add(tag='images/sample')
            im.metadata.plugin_data.plugin_name = 'images'
            im.tensor.dtype = types_pb2.DT_STRING
            im.tensor.tensor_shape.dim.add(size=3)
            im.tensor.string_val.extend([b'2', b'2', b'\x89PNG fake'])
            h = ev.summary.value.add(tag='weights/histogram')
            h.metadata.plugin_data.plugin_name = 'histograms'
            h.tensor.dtype = types_pb2.DT_DOUBLE
            h.tensor.tensor_shape.dim.add(size=2)
            h.tensor.tensor_shape.dim.add(size=3)
            h.tensor.double_val.extend([0.0, 0.5, 1.0, 0.5, 1.0, 2.0])
            n = ev.summary.value.add(tag='no_plugin_tensor')
            n.tensor.dtype = types_pb2.DT_FLOAT
            n.tensor.float_val.append(5.0)
            w.write(ev)
    w.close()

S = 20
w = Writer('steps', 'events.out.tfevents.1700000002.host.99.0')
for step in range(12 * S):
    e, i = divmod(step, S)
    w.scalar('train/center_loss', step, 2.0 * 0.95 ** (step / S) * (1.4 if e == 8 and i < 4 else 1.0))
    w.scalar('lr', step, 0.1 if e < 8 else 0.01)
    w.scalar('epoch', step, float(e))
    if i == S - 1:
        w.scalar('val/center_loss', step, 2.2 * 0.9 ** e)
w.close()

with open(os.path.join(out_dir, 'expected.json'), 'w') as f:
    json.dump(expected, f, indent=0, sort_keys=True)
    f.write('\n')
print('wrote', out_dir)
