"""A short mixed-register English text that the prior scorer reads once to learn token frequencies.

Written for costmw; it mixes instructions, reports, dialogue and reference prose so that the
averaged predictions of the scoring LM cover the words prompts are made of.
"""

REFERENCE_TEXT = """\
Please read the following notes carefully before you start working on the task. The goal of this \
project is to make the monthly report easier to read for people who do not work in the finance team. \
The report should explain what happened during the month, why it happened, and what we expect to \
happen next. It should be short, it should use plain language, and it should avoid abbreviations \
unless they are explained the first time they appear.

In the first section, describe the main results of the month. Sales grew compared with the previous \
month, mostly because of the new product line that was launched in the spring. Costs also increased, \
but more slowly than sales, so the margin improved. The team hired two new people in customer support, \
and the average waiting time for customers went down from eleven minutes to four minutes.

The second section is about risks. The biggest risk is that our main supplier may not be able to \
deliver the parts we need on time, because its factory was closed for two weeks after a flood. We \
have asked a second supplier for an offer, and we expect an answer before the end of the week. If \
the delay continues, some orders will be shipped late, and we will have to inform the customers.

"Can you tell me when my order will arrive?" the customer asked on the phone. The agent looked at the \
screen and answered that the parcel had left the warehouse that morning and would probably arrive on \
Thursday. "That is good news," she said. "I was worried that it had been lost." The agent gave her the \
tracking number and explained how to follow the parcel on the website.

The history of the town goes back more than eight hundred years. It was founded at the place where \
an old road crossed the river, and for a long time it was an important market for grain, wool and \
cattle. In the nineteenth century a railway line was built, and several factories opened near the \
station. Most of them have closed since then, but the old buildings have been turned into offices, \
shops, apartments and a small museum that tells the story of the people who worked there.

To install the software, download the package for your operating system and open it. Follow the \
instructions on the screen, accept the licence agreement, and choose the folder where the program \
should be installed. When the installation is finished, restart the computer. If an error message \
appears, write down the exact text of the message and contact the help desk, who will ask you for \
the version number and a description of what you were doing when the problem occurred.

The meeting started at ten o'clock with a short review of the actions from last week. Most of them \
were done. The design of the new website is almost finished, and the first version will be shown to \
a group of users next Tuesday. The budget for the autumn campaign was approved, but the committee \
asked for a clearer plan of how the results will be measured. The next meeting will take place on \
the same day and at the same time next week.

Water boils at one hundred degrees Celsius at sea level, but at a lower temperature in the mountains, \
where the air pressure is lower. This is why cooking pasta or potatoes takes longer at high altitude. \
Scientists measure pressure in pascals, and weather forecasts often give it in hectopascals. A sudden \
drop in pressure usually means that a storm is coming, while high pressure usually brings dry and \
calm weather.

You are a helpful assistant. Answer the user's questions truthfully and concisely. If you do not know \
the answer, say that you do not know instead of guessing. When the user asks for code, write clear \
and well commented code and explain how to run it. When the user asks for a summary, keep the most \
important facts, names, dates and numbers, and leave out the details that do not matter.

Thank you for your message. We have received your request and one of our colleagues will contact you \
within two working days. In the meantime, you can find answers to the most common questions on our \
help page. If your question is urgent, please call us during office hours, from Monday to Friday \
between nine in the morning and five in the afternoon.
"""
