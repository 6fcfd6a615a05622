// wgsl_reflect's "main" is a build Node cannot import by name; we import its ESM file directly.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
