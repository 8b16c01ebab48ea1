/**
 * The WebAssembly JS API as Node 20 provides it. TypeScript only declares it in the DOM and
 * WebWorker libs, which do not fit a Node project, and @types/node 20 does not declare it.
 * Only what slimlm uses is declared.
 */
declare namespace WebAssembly {
  interface MemoryDescriptor {
    initial: number;
    maximum?: number;
    shared?: boolean;
  }
  interface Memory {
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
    grow(delta: number): number;
  }
  var Memory: {
    prototype: Memory;
    new (descriptor: MemoryDescriptor): Memory;
  };

  type ImportValue = Function | Memory | number | bigint | Global | Table;
  type Imports = Record<string, Record<string, ImportValue>>;
  type Exports = Record<string, Function | Memory | Global | Table>;

  interface Global {
    value: number | bigint;
  }
  var Global: { prototype: Global };
  interface Table {
    readonly length: number;
  }
  var Table: { prototype: Table };

  interface Module {}
  var Module: {
    prototype: Module;
    new (bytes: ArrayBufferView | ArrayBuffer): Module;
    exports(module: Module): { name: string; kind: string }[];
    imports(module: Module): { module: string; name: string; kind: string }[];
  };

  interface Instance {
    readonly exports: Exports;
  }
  var Instance: {
    prototype: Instance;
    new (module: Module, imports?: Imports): Instance;
  };

  interface WebAssemblyInstantiatedSource {
    module: Module;
    instance: Instance;
  }

  function validate(bytes: ArrayBufferView | ArrayBuffer): boolean;
  function compile(bytes: ArrayBufferView | ArrayBuffer): Promise<Module>;
  function instantiate(bytes: ArrayBufferView | ArrayBuffer, imports?: Imports): Promise<WebAssemblyInstantiatedSource>;
  function instantiate(module: Module, imports?: Imports): Promise<Instance>;
}
