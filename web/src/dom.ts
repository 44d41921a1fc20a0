/** The page's elements by id; the ids are fixed by index.html. */
export const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;
