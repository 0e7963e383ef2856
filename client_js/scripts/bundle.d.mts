export declare const bundlePath: string;
export declare function buildBundle(): Promise<string>;
