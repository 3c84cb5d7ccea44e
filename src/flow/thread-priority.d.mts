// Types of thread-priority.mjs (plain JavaScript, as worker threads import it).
export declare const LOWERED_NICE: number;
export declare function osThreadId(): number | undefined;
export declare function threadPriority(lower: boolean): number | undefined;
export declare function startSharedIoThreads(): void;
