// Prompt garbage collection. onnxruntime-node returns every fetched output as a fresh copy, even into
// pre-allocated tensors (it writes our buffer, then copies it into a new ArrayBuffer). For a training
// step those copies are parameter-sized; collecting them right away keeps peak memory at one copy.
import * as v8 from "node:v8";
import * as vm from "node:vm";

let gc: (() => void) | undefined;

export function collectGarbage(): void {
  if (!gc) {
    v8.setFlagsFromString("--expose-gc");
    gc = vm.runInNewContext("gc") as () => void;
  }
  gc();
}
