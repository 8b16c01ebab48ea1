import { FileError, ModelFormatError, assert } from "../errors.js";
import type { RandomAccessFile } from "./file.js";
import type { TensorInfo, WeightSource } from "./weights.js";

/** How one tensor's bytes are produced. `byteOffset`/`dst` are already range-checked. */
export interface TensorSlot {
  readonly info: TensorInfo;
  read(byteOffset: number, dst: Uint8Array): void;
}

/** A tensor stored contiguously at `offset` in `file`. */
export function fileSpanSlot(info: TensorInfo, file: RandomAccessFile, offset: number): TensorSlot {
  return {
    info,
    read(byteOffset, dst) {
      readExactly(file, offset + byteOffset, dst);
    },
  };
}

/** A tensor held in memory (synthesized tensors such as rope_freqs). */
export function memorySlot(info: TensorInfo, bytes: Uint8Array): TensorSlot {
  assert(bytes.length === info.nbytes, "memory slot size");
  return {
    info,
    read(byteOffset, dst) {
      dst.set(bytes.subarray(byteOffset, byteOffset + dst.length));
    },
  };
}

/** Reads exactly dst.length bytes; a short read means the file changed since it was validated. */
export function readExactly(file: RandomAccessFile, position: number, dst: Uint8Array): void {
  const n = file.read(position, dst);
  if (n !== dst.length) {
    throw new FileError(`"${file.path}" is shorter than when it was opened`, {
      expected: `${dst.length} bytes at offset ${position}`,
      got: `${n} bytes`,
      hint: "the file was truncated or replaced while in use",
    });
  }
}

/** A WeightSource over a list of slots. */
export class SlotWeightSource implements WeightSource {
  readonly path: string;
  readonly tensors: readonly TensorInfo[];
  private readonly slots: ReadonlyMap<string, TensorSlot>;
  private readonly onClose: () => void;

  constructor(path: string, slots: readonly TensorSlot[], onClose: () => void) {
    this.path = path;
    const map = new Map<string, TensorSlot>();
    for (const s of slots) {
      assert(!map.has(s.info.name), () => `duplicate slot ${s.info.name}`);
      map.set(s.info.name, s);
    }
    this.slots = map;
    this.tensors = slots.map((s) => s.info);
    this.onClose = onClose;
  }

  get(name: string): TensorInfo | undefined {
    return this.slots.get(name)?.info;
  }

  readInto(name: string, byteOffset: number, dst: Uint8Array): void {
    const slot = this.slots.get(name);
    if (slot === undefined) {
      throw new ModelFormatError("tensor not found", { file: this.path, field: name, expected: "a tensor of this name", got: "none" });
    }
    assert(
      Number.isSafeInteger(byteOffset) && byteOffset >= 0 && byteOffset + dst.length <= slot.info.nbytes,
      () => `readInto ${name}: bytes [${byteOffset}, ${byteOffset + dst.length}) outside [0, ${slot.info.nbytes})`,
    );
    if (dst.length === 0) return;
    slot.read(byteOffset, dst);
  }

  close(): void {
    this.onClose();
  }
}
