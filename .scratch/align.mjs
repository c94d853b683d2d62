const a = new Int32Array(1.39e6*16); const b = new Int32Array(1000);
console.log(process.env.GLIBC_TUNABLES ?? '', 'big', a.buffer.byteLength);
